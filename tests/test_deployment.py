"""Flower's Deployment Engine: the package's entry points, certificates, node keys, command lines, stopping by
PID, and a real run.

The slow test starts a SuperLink and three SuperNodes on 127.0.0.1 (TLS, SuperNode
authentication, the warm executor), runs two rounds of bgmd with one Byzantine client through
``flwr run . <connection>``, and stops every process by PID.
"""

import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fedrobust import deploy
from fedrobust.run.app import may_be_byzantine
from fedrobust.config import RunConfig
from fedrobust.core.results import read_results

from _flwr_cli import flwr_json, wait_for_run

ROOT = Path(__file__).resolve().parents[1]


def _handshake(certs, ca_file, server_name):
    """A TLS handshake on 127.0.0.1 with the server pair of ``certs``; the client trusts ``ca_file``."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs.server_cert, certs.server_key)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def serve():
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client_ctx = ssl.create_default_context(cafile=str(ca_file))
        try:
            with socket.create_connection(listener.getsockname(), timeout=10) as raw:
                with client_ctx.wrap_socket(raw, server_hostname=server_name) as tls:
                    return tls.version()
        finally:
            thread.join(timeout=10)


def test_certificates_verify_for_the_named_hosts_only(tmp_path):
    certs = deploy.make_certificates(tmp_path / "a", ["127.0.0.1", "localhost", "link.example"])
    assert _handshake(certs, certs.ca_cert, "127.0.0.1").startswith("TLS")
    assert _handshake(certs, certs.ca_cert, "link.example").startswith("TLS")
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(certs, certs.ca_cert, "other.example")
    other = deploy.make_certificates(tmp_path / "b")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(certs, other.ca_cert, "127.0.0.1")  # a CA that did not sign it
    assert oct(certs.server_key.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ValueError, match="hosts"):
        deploy.make_certificates(tmp_path / "c", [])


def test_node_keys_are_what_flower_loads(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from flwr.cli.supernode.register import try_load_public_key
    from flwr.supercore.primitives.asymmetric import public_key_to_bytes

    pairs = deploy.make_node_keys(tmp_path, 2)
    assert [p.name for pair in pairs for p in pair] == ["node-0.key", "node-0.pub", "node-1.key", "node-1.pub"]
    private = serialization.load_ssh_private_key(pairs[0][0].read_bytes(), None)  # as flower-supernode does
    assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
    # `flwr supernode register` accepts the public file, and it is the private key's public half.
    assert try_load_public_key(pairs[0][1]) == public_key_to_bytes(private.public_key())
    assert try_load_public_key(pairs[1][1]) != try_load_public_key(pairs[0][1])


def test_package_keeps_its_public_names_and_entry_points(tmp_path, monkeypatch, capsys):
    import runpy

    from fedrobust import cli
    from fedrobust.deploy import certs, commands, lifecycle, processes
    from fedrobust.deploy import cli as deploy_cli

    homes = {
        certs: ["Certificates", "make_certificates", "make_node_keys"],
        commands: ["ISOLATIONS", "MARKER_ENV", "superlink_command", "supernode_command", "executor_command",
                   "deployment_env", "write_connection", "free_port"],
        processes: ["deployment_pids", "stop_pids", "online_supernodes"],
        lifecycle: ["DEFAULT_CONNECTION", "STATE_FILE", "Deployment", "up", "down"],
        deploy_cli: ["build_parser", "main"],
    }
    assert sorted(deploy.__all__) == sorted(n for names in homes.values() for n in names)
    for module, names in homes.items():
        assert module.__doc__.strip() and sorted(module.__all__) == sorted(names), module.__name__
        for name in names:
            assert getattr(deploy, name) is getattr(module, name), name
    # `python -m fedrobust.deploy ...` runs the package's __main__.
    monkeypatch.setattr(sys, "argv", ["-m", "certs", "--out", str(tmp_path / "m"), "--host", "127.0.0.1"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("fedrobust.deploy", run_name="__main__", alter_sys=True)
    assert done.value.code == 0 and (tmp_path / "m" / "ca.crt").is_file()
    # `fedrobust deploy ...` goes through fedrobust.cli.
    assert cli.main(["deploy", "certs", "--out", str(tmp_path / "c"), "--host", "h.example", "--supernodes", "1"]) == 0
    assert (tmp_path / "c" / "keys" / "node-0.pub").is_file()
    capsys.readouterr()
    assert cli.main(["deploy", "up", "--supernodes", "0", "--run-dir", str(tmp_path / "d")]) == 1
    assert "fedrobust deploy: error: the number of SuperNodes (--supernodes) must be" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("prog", ["fedrobust deploy", "python -m fedrobust.deploy"])
def test_up_prints_the_stop_command_as_it_was_started(prog, monkeypatch, capsys):
    from types import SimpleNamespace

    from fedrobust.deploy import cli as deploy_cli

    started = SimpleNamespace(address="127.0.0.1:9092", num_supernodes=2, isolation="warm", run_dir="runs/my dep",
                              flwr_run_command=lambda: "flwr run . local")
    monkeypatch.setattr(deploy_cli, "up", lambda *a, **k: started)
    assert deploy_cli.main(["up", "--supernodes", "2", "--run-dir", "x"], prog=prog) == 0
    assert f"stop: {prog} down --run-dir 'runs/my dep'" in capsys.readouterr().out


def test_command_lines():
    certs = deploy.Certificates(Path("ca.crt"), Path("s.crt"), Path("s.key"))
    link = deploy.superlink_command(certs, host="127.0.0.1", port=9100, database="db")
    assert link[0] == "flower-superlink" and "--enable-supernode-auth" in link and "--insecure" not in link
    assert link[link.index("--port") + 1] == "9100" and "--disable-runtime-dependency-installation" in link
    assert "--enable-supernode-auth" not in deploy.superlink_command(
        certs, host="127.0.0.1", port=9100, database="db", node_auth=False
    )
    for isolation, flower_mode in (("warm", "process"), ("process", "process"), ("subprocess", "subprocess")):
        node = deploy.supernode_command(superlink="127.0.0.1:9100", ca_cert="ca.crt", partition_id=2,
                                        num_partitions=3, runtime_port=9201, isolation=isolation, private_key="k")
        assert node[node.index("--isolation") + 1] == flower_mode
        assert node[node.index("--node-config") + 1] == "partition-id=2 num-partitions=3"
        assert node[node.index("--auth-supernode-private-key") + 1] == "k"
        assert node[node.index("--port") + 1] == "9201" and "--insecure" not in node
    assert deploy.executor_command("warm", 9201)[-1] == "127.0.0.1:9201"
    with pytest.raises(ValueError, match="isolation"):
        deploy.executor_command("thread", 9201)
    with pytest.raises(ValueError, match="partition_id"):
        deploy.supernode_command(superlink="x:1", ca_cert="c", partition_id=3, num_partitions=3, runtime_port=1)


def test_connection_is_added_and_flower_reads_it(tmp_path, monkeypatch):
    from flwr.cli.flower_config import read_superlink_connection

    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[superlink]\ndefault = "mine"\n\n[superlink.mine]\naddress = "10.0.0.1:9093"\n')
    deploy.write_connection(home, "fedrobust-deploy", "127.0.0.1:9100", tmp_path / "ca.crt")
    monkeypatch.setenv("FLWR_HOME", str(home))
    conn = read_superlink_connection("fedrobust-deploy")
    assert conn.address == "127.0.0.1:9100" and conn.root_certificates == str(tmp_path / "ca.crt")
    assert read_superlink_connection(None).address == "10.0.0.1:9093"  # the rest is kept


def test_down_stops_marked_processes_and_spares_reused_pids(tmp_path):
    run_dir = tmp_path / "dep"
    run_dir.mkdir()
    env = deploy.deployment_env(run_dir, tmp_path / "home")
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], env=env)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        dep = deploy.Deployment(str(run_dir), "c", "a", "h", "warm", 1, True,
                                pids={"superlink": stranger.pid, "supernode-0": ours.pid})
        dep.save()
        assert deploy.deployment_pids(run_dir) == [ours.pid]
        assert deploy.down(run_dir, grace=5) == [ours.pid]
        assert not Path(f"/proc/{ours.pid}").exists()  # stopped and reaped
        assert stranger.poll() is None  # recorded, but not carrying the marker: not ours any more
    finally:
        for proc in (ours, stranger):
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_bgmd_on_three_supernodes_with_one_byzantine(tmp_path):
    run_dir, out = tmp_path / "deployment", tmp_path / "results.json"
    run = {"strategy": "bgmd", "attack": "bit-flip", "byzantine-fraction": 0.34, "num-clients": 3,
           "clients-per-round": 3, "rounds": 2, "lr": 0.3, "batch-size": 64, "seed": 0, "device": "cpu"}
    cfg = RunConfig.from_mapping(run)
    byzantine = [p for p in range(3) if may_be_byzantine(cfg, p)]
    assert len(byzantine) == 1
    overrides = " ".join(f"{k}={json.dumps(v)}" for k, v in {**run, "output": str(out)}.items())
    try:
        dep = deploy.up(run_dir, 3, isolation="warm", timeout=300)
        assert len(dep.pids) == 7  # SuperLink, 3 SuperNodes, 3 executors
        env = deploy.deployment_env(run_dir, dep.flwr_home)
        run_id = flwr_json(["run", ".", dep.connection, "--format", "json", "--run-config", overrides], env)["run-id"]
        status = wait_for_run(run_id, env, 600, connection=(dep.connection,))
        assert status == "finished:completed", (run_dir / "logs" / "superlink.log").read_text()[-5000:]
        results = read_results(out)
        assert [r["round"] for r in results["rounds"]] == [1, 2]
        assert all(r["num_clients"] == 3 and r["byzantine_clients"] == byzantine for r in results["rounds"])
        accuracy = [results["initial"]["accuracy"]] + [r["accuracy"] for r in results["rounds"]]
        assert accuracy[2] > accuracy[0] + 0.1, accuracy
    finally:
        marked = deploy.deployment_pids(run_dir)
        stopped = deploy.down(run_dir)
    assert set(marked) <= set(stopped)
    assert deploy.deployment_pids(run_dir) == []
    assert not [pid for pid in stopped if Path(f"/proc/{pid}").exists() and _state(pid) != "Z"]


def _state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_warm_executor_keeps_libraries_and_drops_the_app_package():
    # In a fresh interpreter: preload must not disturb this test process's modules.
    code = (
        "import sys; from fedrobust.run.warm_executor import preload\n"
        "failed = preload(['fedrobust.data.splits', 'no_such_module_xyz'])\n"
        "print(failed[0].split()[0], 'numpy' in sys.modules, any(m.split('.')[0] == 'fedrobust' for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.stdout.split() == ["no_such_module_xyz", "True", "False"], done.stderr
