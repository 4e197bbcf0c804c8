"""Leaf helpers that every layer may use and that import nothing of fedrobust's libraries.

- :mod:`~fedrobust.core.checks`: argument checks shared by the libraries;
- :mod:`~fedrobust.core.registry`: the name registries behind ``register_attack`` and friends;
- :mod:`~fedrobust.core.rng`: the table of seeded random streams;
- :mod:`~fedrobust.core.errors`: the one-line errors (``ConfigError``, ``CheckpointError``, ...);
- :mod:`~fedrobust.core.params`: ``name=value`` parameter strings;
- :mod:`~fedrobust.core.ndarrays`: flat vectors to and from a model's arrays;
- :mod:`~fedrobust.core.validation`: the validator of untrusted client replies;
- :mod:`~fedrobust.core.results`: round records and the results document;
- :mod:`~fedrobust.core.extensions`: loading users' extension modules;
- :mod:`~fedrobust.core.paths`, :mod:`~fedrobust.core.processes`: output-path checks, child processes;
- :mod:`~fedrobust.core.ports`: free TCP ports for the processes fedrobust starts;
- :mod:`~fedrobust.core.threads`: torch's thread count, given back after a block that changes it.
"""
