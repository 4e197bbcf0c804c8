"""Running one configuration: build its parts, the Flower apps, the engines, checkpoints.

- :mod:`~fedrobust.run.build`: a run's data, partitions, model and poisoned data from its config;
- :mod:`~fedrobust.run.app`: the legacy-API ServerApp and ClientApp (``flwr run .``);
- :mod:`~fedrobust.run.evaluation`: central evaluation and the backdoor's success rate;
- :mod:`~fedrobust.run.simulation`: ``fedrobust.simulate`` on Flower's Ray engine;
- :mod:`~fedrobust.run.inprocess`: the same strategy and clients in this process;
- :mod:`~fedrobust.run.checkpoint`, :mod:`~fedrobust.run.checkpoint_file`: checkpoints and resume;
- :mod:`~fedrobust.run.interrupt`: Ctrl-C; :mod:`~fedrobust.run.warm_executor`: Ray worker warm-up;
- :mod:`~fedrobust.run.tensorboard_log`: the ``tensorboard`` key's live event files.
"""
