"""Bringing a deployment up and down: one job, the SuperLink and SuperNodes as one unit.

:func:`up` writes the certificates, keys and connection, starts the SuperLink, registers and
starts the SuperNodes (and their executors) and waits until all are online; :func:`down` stops
them all by PID. :class:`Deployment` is what ``up`` started, saved in ``RUN_DIR/deployment.json``.

See Also
--------
fedrobust.deploy : the overview (isolation modes, the process marker).
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .certs import make_certificates, make_node_keys
from .commands import (
    _check_isolation,
    deployment_env,
    executor_command,
    free_port,
    superlink_command,
    supernode_command,
    write_connection,
)
from .processes import _alive, _flwr_cli, _spawn, _tail, _wait_superlink, deployment_pids, online_supernodes, stop_pids

__all__ = ["DEFAULT_CONNECTION", "STATE_FILE", "Deployment", "up", "down"]

DEFAULT_CONNECTION = "fedrobust-deploy"
STATE_FILE = "deployment.json"


@dataclass
class Deployment:
    """What :func:`up` started, as saved in ``RUN_DIR/deployment.json``."""

    run_dir: str
    connection: str
    address: str
    flwr_home: str
    isolation: str
    num_supernodes: int
    node_auth: bool
    pids: dict[str, int] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def flwr_run_command(self) -> str:
        """The ``flwr run`` command line for this deployment (from the app's directory)."""
        return f"FLWR_HOME={shlex.quote(self.flwr_home)} flwr run . {self.connection}"

    def save(self) -> Path:
        """Write ``RUN_DIR/deployment.json``; return its path."""
        path = Path(self.run_dir) / STATE_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> Deployment:
        """Read the deployment saved in ``run_dir``."""
        path = Path(run_dir) / STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no deployment in {run_dir} ({STATE_FILE} is missing)")
        return cls(**json.loads(path.read_text()))


def up(
    run_dir: str | os.PathLike[str],
    num_supernodes: int,
    *,
    isolation: str = "warm",
    host: str = "127.0.0.1",
    port: int | None = None,
    connection: str = DEFAULT_CONNECTION,
    node_auth: bool = True,
    timeout: float = 180.0,
) -> Deployment:
    """Start a SuperLink and ``num_supernodes`` SuperNodes on this machine; return the deployment.

    Parameters
    ----------
    run_dir : path
        The deployment's folder: certificates, keys, the SuperLink database, one log per process
        under ``logs/``, the CLI's ``flwr-home`` (with the connection) and ``deployment.json``.
    num_supernodes : int
        SuperNodes to start; node ``i`` holds partition ``i`` (run ``num-clients`` = this).
    isolation : {"warm", "process", "subprocess"}
        How the SuperNodes run their ClientApps (see :mod:`fedrobust.deploy`).
    host : str
        The address the SuperLink binds to and SuperNodes dial (and the certificate names).
    port : int, optional
        The SuperLink's port (Fleet, Control and Runtime API); a free one when None.
    connection : str
        The name of the SuperLink connection written to ``flwr-home/config.toml``.
    node_auth : bool
        SuperNode authentication: only registered public keys may connect.
    timeout : float
        Seconds to wait for the SuperLink and for all SuperNodes to come online.

    Raises
    ------
    RuntimeError, TimeoutError
        A process failed to start (the message has its log tail); everything started is stopped.
    """
    _check_isolation(isolation)
    if isinstance(num_supernodes, bool) or not isinstance(num_supernodes, int) or num_supernodes < 1:
        raise ValueError(f"the number of SuperNodes (--supernodes) must be an integer >= 1, got {num_supernodes!r}")
    root = Path(run_dir).resolve()
    if (root / STATE_FILE).exists() and deployment_pids(root):
        raise RuntimeError(f"{root} already has a running deployment; run `down` first")
    for sub in ("logs", "superlink", "nodes"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    port = port if port is not None else free_port(host)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    dep = Deployment(
        run_dir=str(root), connection=connection, address=address, flwr_home=str(root / "flwr-home"),
        isolation=isolation, num_supernodes=num_supernodes, node_auth=node_auth,
    )
    names = [host] + [h for h in ("127.0.0.1", "localhost") if h != host]
    certs = make_certificates(root / "certs", names)
    keys = make_node_keys(root / "keys", num_supernodes) if node_auth else [(None, None)] * num_supernodes
    write_connection(dep.flwr_home, connection, address, certs.ca_cert)
    dep.save()
    try:
        log = root / "logs" / "superlink.log"
        env = deployment_env(root, root / "superlink" / "flwr-home")
        superlink = _spawn(
            "superlink", superlink_command(certs, host=host, port=port, database=root / "superlink" / "state.db",
                                           node_auth=node_auth), env, log, dep,
        )
        _wait_superlink(address, certs.ca_cert, superlink, log, timeout)
        cli_env = deployment_env(root, dep.flwr_home)
        runtime_ports: list[int] = []
        for i, (private, public) in enumerate(keys):
            if public is not None:
                _flwr_cli(["supernode", "register", str(public), connection, "--name", f"node-{i}",
                           "--format", "json"], cli_env)
            # (An earlier SuperNode may not listen on its port yet: the system could hand it out again.)
            runtime_port = free_port(exclude=runtime_ports)
            runtime_ports.append(runtime_port)
            node_env = deployment_env(root, root / "nodes" / f"node-{i}" / "flwr-home")
            _spawn(f"supernode-{i}", supernode_command(
                superlink=address, ca_cert=certs.ca_cert, partition_id=i, num_partitions=num_supernodes,
                runtime_port=runtime_port, isolation=isolation, private_key=private,
            ), node_env, root / "logs" / f"supernode-{i}.log", dep)
            if (cmd := executor_command(isolation, runtime_port)) is not None:
                _spawn(f"executor-{i}", cmd, node_env, root / "logs" / f"executor-{i}.log", dep)
        _wait_online(dep, timeout)
    except BaseException:
        down(root)
        raise
    return dep


def _wait_online(dep: Deployment, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    online = 0
    while time.monotonic() < deadline:
        for name, pid in dep.pids.items():
            if not _alive(pid):
                raise RuntimeError(f"{name} (PID {pid}) exited:\n{_tail(Path(dep.logs[name]))}")
        online = online_supernodes(dep)
        if online >= dep.num_supernodes:
            return
        time.sleep(1.0)
    raise TimeoutError(f"{online} of {dep.num_supernodes} SuperNodes online after {timeout:.0f} s; logs in "
                       f"{dep.run_dir}/logs")


def down(run_dir: str | os.PathLike[str], grace: float = 10.0) -> list[int]:
    """Stop every process of the deployment in ``run_dir``, by PID; return the PIDs stopped.

    The PIDs are those recorded in ``deployment.json`` plus their children (ClientApp, SuperExec
    and ServerApp processes), found by the ``FEDROBUST_DEPLOYMENT`` marker in their environment;
    a recorded PID that no longer carries the marker (reused by another process) is left alone.
    SuperNodes go first, then the SuperLink.

    Raises
    ------
    RuntimeError
        Some process survived SIGKILL.
    """
    root = Path(run_dir).resolve()
    marked = set(deployment_pids(root))
    recorded: dict[str, int] = {}
    if (root / STATE_FILE).exists():
        recorded = Deployment.load(root).pids
    link = {pid for name, pid in recorded.items() if name == "superlink"} & marked
    first = sorted(marked - link)
    stopped = first + sorted(link)
    left = stop_pids(first, grace) + stop_pids(link, grace)
    left += stop_pids(deployment_pids(root), grace)  # anything started meanwhile
    if left:
        raise RuntimeError(f"processes {left} of the deployment in {root} survived SIGKILL")
    return stopped
