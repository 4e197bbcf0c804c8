"""Command lines and environment of a deployment's processes: one job, saying how each starts.

The ``flower-superlink``, ``flower-supernode`` and executor command lines, the environment every
process gets (offline Flower and the ``FEDROBUST_DEPLOYMENT`` marker), the ``flwr`` CLI's
SuperLink connection, free ports, and the check of the isolation mode. Nothing here starts a
process.

See Also
--------
fedrobust.deploy.processes : starts, finds and stops the processes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..core.ports import free_port
from .certs import Certificates

__all__ = [
    "ISOLATIONS",
    "MARKER_ENV",
    "superlink_command",
    "supernode_command",
    "executor_command",
    "deployment_env",
    "write_connection",
    "free_port",
]

ISOLATIONS = ("warm", "process", "subprocess")
MARKER_ENV = "FEDROBUST_DEPLOYMENT"
# Quiet, offline Flower processes: no update check, no telemetry, no runtime `uv sync`.
_FLOWER_ENV = {
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_TELEMETRY_ENABLED": "0",
}



def _check_isolation(isolation: str) -> None:
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}; got {isolation!r}")


def superlink_command(
    certs: Certificates, *, host: str, port: int, database: str | os.PathLike[str], node_auth: bool = True
) -> list[str]:
    """``flower-superlink`` with TLS on ``host:port`` (Fleet, Control and Runtime API share the port).

    Examples
    --------
    >>> c = Certificates(Path("c/ca.crt"), Path("c/server.crt"), Path("c/server.key"))
    >>> " ".join(superlink_command(c, host="127.0.0.1", port=9100, database="s.db"))[:60]
    'flower-superlink --ssl-ca-certfile c/ca.crt --ssl-certfile c'
    """
    cmd = [
        "flower-superlink",
        "--ssl-ca-certfile", str(certs.ca_cert),
        "--ssl-certfile", str(certs.server_cert),
        "--ssl-keyfile", str(certs.server_key),
        "--host", host,
        "--port", str(port),
        "--database", str(database),
        "--isolation", "subprocess",
        "--disable-runtime-dependency-installation",
    ]
    return [*cmd, "--enable-supernode-auth"] if node_auth else cmd


def supernode_command(
    *,
    superlink: str,
    ca_cert: str | os.PathLike[str],
    partition_id: int,
    num_partitions: int,
    runtime_port: int,
    isolation: str = "warm",
    private_key: str | os.PathLike[str] | None = None,
) -> list[str]:
    """``flower-supernode`` for partition ``partition_id`` of ``num_partitions``.

    Its Runtime API (which its ClientApp processes talk to) listens on ``127.0.0.1:runtime_port``.

    Examples
    --------
    >>> cmd = supernode_command(superlink="127.0.0.1:9100", ca_cert="ca.crt", partition_id=1,
    ...                         num_partitions=3, runtime_port=9200, isolation="warm")
    >>> cmd[cmd.index("--node-config") + 1], cmd[cmd.index("--isolation") + 1]
    ('partition-id=1 num-partitions=3', 'process')
    """
    _check_isolation(isolation)
    if not 0 <= partition_id < num_partitions:
        raise ValueError(f"partition_id must lie in [0, {num_partitions}), got {partition_id}")
    cmd = [
        "flower-supernode",
        "--superlink", superlink,
        "--root-certificates", str(ca_cert),
        "--node-config", f"partition-id={partition_id} num-partitions={num_partitions}",
        "--isolation", "subprocess" if isolation == "subprocess" else "process",
        "--host", "127.0.0.1",
        "--port", str(runtime_port),
    ]
    if private_key is not None:
        cmd += ["--auth-supernode-private-key", str(private_key)]
    return cmd


def executor_command(isolation: str, runtime_port: int) -> list[str] | None:
    """The process that runs a SuperNode's ClientApps under ``isolation`` (None: the SuperNode's own).

    Examples
    --------
    >>> executor_command("process", 9200)
    ['flower-superexec', '--insecure', '--runtime-api-address', '127.0.0.1:9200']
    >>> executor_command("subprocess", 9200) is None
    True
    """
    _check_isolation(isolation)
    address = f"127.0.0.1:{runtime_port}"
    if isolation == "process":
        return ["flower-superexec", "--insecure", "--runtime-api-address", address]
    if isolation == "warm":
        return [sys.executable, "-m", "fedrobust.run.warm_executor", "--runtime-api-address", address]
    return None


def deployment_env(run_dir: str | os.PathLike[str], flwr_home: str | os.PathLike[str]) -> dict[str, str]:
    """The environment of a deployment's processes: offline Flower, the marker, this venv on PATH."""
    env = {**os.environ, **_FLOWER_ENV, MARKER_ENV: str(Path(run_dir).resolve()), "FLWR_HOME": str(flwr_home)}
    # Flower starts flower-superexec / flwr-clientapp by name: this interpreter's tools come first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def write_connection(
    flwr_home: str | os.PathLike[str], name: str, address: str, root_certificates: str | os.PathLike[str]
) -> Path:
    """Add (or replace) the SuperLink connection ``name`` in ``FLWR_HOME/config.toml``.

    The rest of the file is kept; a missing file gets Flower's ``local`` connection as default.
    """
    import tomli_w

    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]

    path = Path(flwr_home) / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = tomllib.loads(path.read_text()) if path.exists() else {}
    superlink = config.setdefault("superlink", {})
    superlink.setdefault("default", "local")
    superlink.setdefault("local", {"address": ":local:"})
    superlink[name] = {"address": address, "root-certificates": str(Path(root_certificates).resolve())}
    path.write_text(tomli_w.dumps(config))
    return path


