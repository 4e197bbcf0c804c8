"""Run fedrobust on Flower's Deployment Engine: one SuperLink and N SuperNodes, with TLS and node auth.

``python -m fedrobust.deploy up --supernodes 3 --run-dir DIR`` generates a CA and a server
certificate, one authentication key pair per SuperNode, starts ``flower-superlink`` with TLS and
SuperNode authentication, registers the nodes' public keys, starts the ``flower-supernode``
processes (partition ``i`` of ``N`` each, with their own Runtime API port) and writes a SuperLink
connection to ``DIR/flwr-home/config.toml``. Then::

    FLWR_HOME=DIR/flwr-home flwr run . fedrobust-deploy --run-config "num-clients=3 ..."

``python -m fedrobust.deploy down --run-dir DIR`` stops every process ``up`` started, by PID.
``python -m fedrobust.deploy certs --out DIR --host HOST`` only writes the certificates and keys
(for SuperLink and SuperNodes on separate machines; see ``docs/deployment.md``).

Isolation (how a SuperNode runs its ClientApp; Flower 1.41 starts one process per message):

- ``subprocess``: Flower's default. The SuperNode starts ``flower-superexec``, which starts a
  fresh ``flwr-clientapp`` per message; each pays the imports of torch and fedrobust.
- ``process``: the SuperNode runs with ``--isolation process`` and the launcher starts
  ``flower-superexec`` next to it; the same per-message processes.
- ``warm`` (the default): ``--isolation process`` with :mod:`fedrobust.run.warm_executor`, which
  imports the heavy libraries once and forks a ready process per message.

Every process ``up`` starts carries ``FEDROBUST_DEPLOYMENT=<run dir>`` in its environment (so do
their children); ``down`` stops exactly the processes that carry it.

Modules, one job each (everything is re-exported here):

- :mod:`~fedrobust.deploy.certs`: the CA, the server certificate and the SuperNode key pairs.
- :mod:`~fedrobust.deploy.commands`: the processes' command lines and environment, the ``flwr``
  connection, free ports.
- :mod:`~fedrobust.deploy.processes`: starting, finding (by marker), watching and stopping processes.
- :mod:`~fedrobust.deploy.lifecycle`: :class:`Deployment`, :func:`up` and :func:`down`.
- :mod:`~fedrobust.deploy.cli`: the argument parser and :func:`main` (``__main__`` runs it).
"""

from .certs import Certificates, make_certificates, make_node_keys
from .cli import build_parser, main
from .commands import (
    ISOLATIONS,
    MARKER_ENV,
    deployment_env,
    executor_command,
    free_port,
    superlink_command,
    supernode_command,
    write_connection,
)
from .lifecycle import DEFAULT_CONNECTION, STATE_FILE, Deployment, down, up
from .processes import deployment_pids, online_supernodes, stop_pids

__all__ = [
    "ISOLATIONS",
    "MARKER_ENV",
    "DEFAULT_CONNECTION",
    "STATE_FILE",
    "Certificates",
    "Deployment",
    "make_certificates",
    "make_node_keys",
    "superlink_command",
    "supernode_command",
    "executor_command",
    "write_connection",
    "deployment_env",
    "deployment_pids",
    "free_port",
    "online_supernodes",
    "stop_pids",
    "up",
    "down",
    "build_parser",
    "main",
]
