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
- ``warm`` (the default): ``--isolation process`` with :mod:`fedrobust.warm_executor`, which
  imports the heavy libraries once and forks a ready process per message.

Every process ``up`` starts carries ``FEDROBUST_DEPLOYMENT=<run dir>`` in its environment (so do
their children); ``down`` stops exactly the processes that carry it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ISOLATIONS",
    "MARKER_ENV",
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
    "main",
]

ISOLATIONS = ("warm", "process", "subprocess")
MARKER_ENV = "FEDROBUST_DEPLOYMENT"
DEFAULT_CONNECTION = "fedrobust-deploy"
STATE_FILE = "deployment.json"
# Quiet, offline Flower processes: no update check, no telemetry, no runtime `uv sync`.
_FLOWER_ENV = {
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_TELEMETRY_ENABLED": "0",
}


@dataclass(frozen=True)
class Certificates:
    """Paths of the deployment's TLS files (PEM): the CA certificate and the server's pair."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


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


# --------------------------------------------------------------------------------------------
# Certificates and keys


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def make_certificates(
    directory: str | os.PathLike[str], hosts: Sequence[str] = ("127.0.0.1", "localhost"), days: int = 365
) -> Certificates:
    """Write a fresh CA and a server certificate signed by it for ``hosts``.

    Parameters
    ----------
    directory : path
        Where ``ca.crt``, ``ca.key``, ``server.crt`` and ``server.key`` go (created if missing).
    hosts : sequence of str
        The names and IP addresses SuperNodes and the ``flwr`` CLI use to reach the SuperLink
        (the certificate's subject alternative names); IPs become IP entries, the rest DNS names.
    days : int
        Validity of both certificates.

    Returns
    -------
    Certificates
        The paths; the SuperLink gets all three, SuperNodes and ``flwr`` only ``ca_cert``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not hosts or any(not isinstance(h, str) or not h.strip() for h in hosts):
        raise ValueError(f"hosts must be a non-empty list of host names or IP addresses, got {hosts!r}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)

    def key_usage(**on: bool) -> Any:
        names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                 "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{n: on.get(n, False) for n in names})

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedrobust deployment CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name).public_key(server_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True, key_agreement=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem_key = {"encoding": serialization.Encoding.PEM, "format": serialization.PrivateFormat.PKCS8,
               "encryption_algorithm": serialization.NoEncryption()}
    certs = Certificates(out / "ca.crt", out / "server.crt", out / "server.key")
    certs.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(out / "ca.key", ca_key.private_bytes(**pem_key))
    certs.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(certs.server_key, server_key.private_bytes(**pem_key))
    return certs


def make_node_keys(directory: str | os.PathLike[str], count: int) -> list[tuple[Path, Path]]:
    """Write ``count`` SuperNode authentication key pairs (EC P-384, OpenSSH format).

    SuperNode ``i`` starts with ``--auth-supernode-private-key node-i.key``; its public key
    ``node-i.pub`` is registered on the SuperLink with ``flwr supernode register``.

    Returns
    -------
    list of (private key path, public key path)
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(count):
        key = ec.generate_private_key(ec.SECP384R1())
        private, public = out / f"node-{i}.key", out / f"node-{i}.pub"
        _write_private(private, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ))
        public.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ) + f" fedrobust-node-{i}\n".encode())
        pairs.append((private, public))
    return pairs


# --------------------------------------------------------------------------------------------
# Command lines and environment


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
        return [sys.executable, "-m", "fedrobust.warm_executor", "--runtime-api-address", address]
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


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------
# Processes


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def deployment_pids(run_dir: str | os.PathLike[str]) -> list[int]:
    """PIDs of the live processes (of this user) that carry this deployment's marker."""
    needle = f"{MARKER_ENV}={Path(run_dir).resolve()}".encode() + b"\0"
    me = os.getpid()
    return sorted(
        int(p.name) for p in Path("/proc").glob("[0-9]*")
        if int(p.name) != me and needle in _environ(int(p.name))
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone once reaped
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_pids(pids: Iterable[int], grace: float = 10.0) -> list[int]:
    """SIGTERM ``pids``, wait up to ``grace`` seconds, SIGKILL what is left; return those still alive."""
    pids = list(pids)
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    left = [p for p in pids if _alive(p)]
    _signal(left, signal.SIGKILL)
    time.sleep(0.5)
    return [p for p in left if _alive(p)]


def _spawn(name: str, cmd: list[str], env: dict[str, str], log: Path, dep: Deployment) -> subprocess.Popen:
    with log.open("ab") as out:
        out.write(f"$ {shlex.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd, env=env, cwd=dep.run_dir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    dep.pids[name], dep.logs[name] = proc.pid, str(log)
    dep.save()
    return proc


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _flwr_cli(args: list[str], env: dict[str, str], timeout: float = 120.0) -> dict[str, Any]:
    flwr = Path(sys.executable).with_name("flwr")
    done = subprocess.run(
        [str(flwr) if flwr.exists() else "flwr", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    text = done.stdout
    try:
        payload = json.loads(text[text.index("{"):])
    except ValueError:
        payload = {"success": False, "error-message": (text + done.stderr).strip()[-2000:]}
    if done.returncode != 0 or not payload.get("success", True):
        raise RuntimeError(f"flwr {' '.join(args[:2])} failed: {payload.get('error-message', payload)}")
    return payload


def _wait_superlink(address: str, ca_cert: Path, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"flower-superlink exited with code {proc.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"https://{address}/health", verify=str(ca_cert), timeout=2.0).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"flower-superlink did not answer on {address} within {timeout:.0f} s:\n{_tail(log)}")


def online_supernodes(dep: Deployment) -> int:
    """How many SuperNodes the SuperLink reports online (``flwr supernode ls``)."""
    env = deployment_env(dep.run_dir, dep.flwr_home)
    nodes = _flwr_cli(["supernode", "ls", dep.connection, "--format", "json"], env).get("nodes", [])
    return sum(1 for n in nodes if str(n.get("status", "")).lower() == "online")


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
        How the SuperNodes run their ClientApps (see the module docstring).
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
        raise ValueError(f"num_supernodes must be an int >= 1, got {num_supernodes!r}")
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
        for i, (private, public) in enumerate(keys):
            if public is not None:
                _flwr_cli(["supernode", "register", str(public), connection, "--name", f"node-{i}",
                           "--format", "json"], cli_env)
            runtime_port = free_port()
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


# --------------------------------------------------------------------------------------------
# Command line


def build_parser(prog: str = "python -m fedrobust.deploy") -> argparse.ArgumentParser:
    """The parser of ``up``, ``down`` and ``certs``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run fedrobust on Flower's Deployment Engine (SuperLink + SuperNodes, TLS, node auth).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    start = commands.add_parser("up", help="start a SuperLink and N SuperNodes on this machine")
    start.add_argument("--supernodes", type=int, required=True, metavar="N", help="SuperNodes (= num-clients)")
    start.add_argument("--run-dir", required=True, help="the deployment's folder (certs, logs, state)")
    start.add_argument("--isolation", choices=ISOLATIONS, default="warm", help="how ClientApps run [warm]")
    start.add_argument("--host", default="127.0.0.1", help="SuperLink bind/dial address [127.0.0.1]")
    start.add_argument("--port", type=int, default=None, help="SuperLink port [a free one]")
    start.add_argument("--connection", default=DEFAULT_CONNECTION, help=f"connection name [{DEFAULT_CONNECTION}]")
    start.add_argument("--no-node-auth", action="store_true", help="let any SuperNode connect")
    start.add_argument("--timeout", type=float, default=180.0, help="start-up timeout in seconds [180]")
    stop = commands.add_parser("down", help="stop every process of a deployment, by PID")
    stop.add_argument("--run-dir", required=True)
    certs = commands.add_parser("certs", help="only write a CA, a server certificate and node keys")
    certs.add_argument("--out", required=True, help="output folder")
    certs.add_argument("--host", action="append", required=True,
                       help="a name or IP the SuperLink is reached at (repeatable)")
    certs.add_argument("--supernodes", type=int, default=0, metavar="N", help="node key pairs to write [0]")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m fedrobust.deploy") -> int:
    """Entry point of ``python -m fedrobust.deploy`` and ``fedrobust deploy``; returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    try:
        if args.command == "up":
            dep = up(args.run_dir, args.supernodes, isolation=args.isolation, host=args.host, port=args.port,
                     connection=args.connection, node_auth=not args.no_node_auth, timeout=args.timeout)
            print(f"SuperLink on {dep.address} with {dep.num_supernodes} SuperNodes ({dep.isolation} isolation); "
                  f"logs in {dep.run_dir}/logs")
            print(f"run:  {dep.flwr_run_command()} --run-config \"num-clients={dep.num_supernodes} "
                  f"clients-per-round={dep.num_supernodes}\"")
            print(f"stop: python -m fedrobust.deploy down --run-dir {shlex.quote(dep.run_dir)}")
        elif args.command == "down":
            stopped = down(args.run_dir)
            print(f"stopped {len(stopped)} processes")
        else:
            made = make_certificates(args.out, args.host)
            keys = make_node_keys(Path(args.out) / "keys", args.supernodes) if args.supernodes else []
            print(f"CA {made.ca_cert}, server certificate {made.server_cert} for {', '.join(args.host)}"
                  + (f", {len(keys)} node key pairs in {Path(args.out) / 'keys'}" if keys else ""))
    except (OSError, ValueError, RuntimeError, TimeoutError) as err:
        print(f"fedrobust deploy: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
