"""Damaged checkpoints are refused: one line naming the file, up front, never a silent load."""

import io
import logging
import re
import shutil

import pytest
import torch

import fedrobust
from fedrobust import checkpoint
from fedrobust.run.checkpoint import SERVER_FILE, CheckpointError, load_client_state, load_server, resume_round
from fedrobust.run.checkpoint_file import FORMAT, read_checkpoint_file, seal, unseal
from fedrobust.cli import main
from fedrobust.config import ConfigError, RunConfig
from fedrobust.run.inprocess import run_inprocess

SMALL = dict(
    dataset="breast-cancer", model="logistic", num_clients=5, clients_per_round=3, lr=0.1, batch_size=16,
    device="cpu", attack="bit-flip", byzantine_fraction=0.2, byzantine_mode="dynamic", strategy="c-rsa",
)


def flip(path, count=200):
    """Flip ``count`` bytes in the middle of ``path``'s payload (past its header line)."""
    data = bytearray(path.read_bytes())
    start = data.index(b"\n") + 1
    middle = start + (len(data) - start) // 2 - count // 2
    for i in range(middle, middle + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[:-17])


def garbage(path):
    path.write_bytes(bytes(range(256)) * 3)


DAMAGES = {"flipped": (flip, "is damaged"), "truncated": (truncate, "is truncated"), "garbage": (garbage, "has no fedrobust checkpoint header")}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A 2-round C-RSA run's checkpoint folder (server memory and a worker model per client)."""
    folder = tmp_path_factory.mktemp("checkpoint")
    run_inprocess(RunConfig(**SMALL, rounds=2, checkpoint_dir=str(folder)))
    return folder


@pytest.fixture
def folder(finished, tmp_path):
    copy = tmp_path / "ck"
    shutil.copytree(finished, copy)
    return copy


def resume_cfg(folder, rounds=4):
    return RunConfig(**SMALL, rounds=rounds, checkpoint_dir=str(folder), resume=True)


def client_file(folder):
    """The state file the lowest partition id would load on resume (its newest)."""
    return newest_client_files(folder)[0]


def newest_client_files(folder):
    newest = {}
    for path in (folder / "clients").glob("*/round-*.bin"):
        key = int(path.parent.name)
        if key not in newest or int(path.stem[6:]) > int(newest[key].stem[6:]):
            newest[key] = path
    return [newest[p] for p in sorted(newest)]


# ---------------------------------------------------------------------------- the file format
def test_a_sealed_payload_reads_back_and_every_damage_is_named():
    payload = bytes(range(256)) * 10
    data = seal(payload)
    assert data.startswith(b"fedrobust-checkpoint %d sha256=" % FORMAT)
    assert unseal(data, "f.bin") == payload
    flipped = bytearray(data)
    flipped[-100] ^= 0x01  # one bit
    cases = {
        bytes(flipped): "f.bin is damaged (its SHA-256 does not match its header)",
        data[:-1]: "f.bin is truncated (2559 of 2560 payload bytes)",
        data + b"x": "f.bin has 1 bytes past its payload",
        data[:40]: "f.bin has a damaged header",
        data.replace(b"checkpoint 2 ", b"checkpoint 7 ", 1): "f.bin is of format 7; this fedrobust reads format 2",
        b"": "f.bin has no fedrobust checkpoint header",
        payload: "f.bin has no fedrobust checkpoint header",
    }
    for bad, message in cases.items():
        with pytest.raises(CheckpointError, match=re.escape(message)) as info:
            unseal(bad, "f.bin")
        assert "\n" not in str(info.value) and str(info.value).endswith("start afresh in an empty checkpoint-dir")


def test_a_checkpoint_error_is_a_config_error_and_a_missing_file_is_one():
    assert issubclass(CheckpointError, ConfigError)
    with pytest.raises(CheckpointError, match="cannot read .*nowhere.bin"):
        read_checkpoint_file("nowhere.bin")


def test_every_checkpoint_file_is_written_with_its_header(finished):
    files = [finished / SERVER_FILE, *sorted((finished / "clients").glob("*/round-*.bin"))]
    assert len(files) > 3
    for path in files:
        assert path.read_bytes().startswith(b"fedrobust-checkpoint 2 sha256="), path
        read_checkpoint_file(path)
    assert not list(finished.rglob("*.tmp"))


# ---------------------------------------------------------------------------- refused on resume
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_resume_refuses_a_damaged_server_checkpoint(folder, damage):
    how, message = DAMAGES[damage]
    how(folder / SERVER_FILE)
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint: {folder / SERVER_FILE} {message}")) as info:
        resume_round(resume_cfg(folder))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_resume_refuses_a_damaged_client_state_file_before_any_round(folder, damage, monkeypatch):
    how, message = DAMAGES[damage]
    path = client_file(folder)
    how(path)
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint: {path} {message}")) as info:
        resume_round(resume_cfg(folder))
    assert "\n" not in str(info.value)
    fits = []
    monkeypatch.setattr("fedrobust.run.inprocess.LocalProxy.fit", lambda *a: fits.append(a))
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        run_inprocess(resume_cfg(folder))
    assert fits == []  # refused before the first round, not by the clients


def test_a_server_checkpoint_from_before_checksums_is_refused_with_what_to_do(folder):
    state = load_server(folder)
    state["format"] = 1
    buffer = io.BytesIO()
    torch.save(state, buffer)
    (folder / SERVER_FILE).write_bytes(buffer.getvalue())  # what fedrobust wrote before the header
    with pytest.raises(CheckpointError, match="before checksums, format 1, which cannot be verified.*start afresh"):
        resume_round(resume_cfg(folder))


def test_a_checked_payload_that_is_not_a_client_state_is_refused(folder):
    path = client_file(folder)
    path.write_bytes(seal(b"\xff\xff\xff\xff"))
    with pytest.raises(CheckpointError, match=re.escape(f"{path} does not hold a client state")):
        load_client_state(folder, int(path.parent.name), before_round=99)


def test_a_fresh_run_still_refuses_a_folder_with_a_damaged_checkpoint(folder):
    flip(folder / SERVER_FILE)
    with pytest.raises(CheckpointError, match="is damaged"):
        resume_round(resume_cfg(folder).replace(resume=False))


@pytest.mark.parametrize("target", ["server", "client"])
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_cli_refuses_a_damaged_checkpoint_in_one_line(folder, target, damage, capsys):
    how, message = DAMAGES[damage]
    path = folder / SERVER_FILE if target == "server" else client_file(folder)
    how(path)
    flags = [f"--{k}={v}" for k, v in resume_cfg(folder).to_dict().items() if not isinstance(v, bool)]
    assert main(["run", *flags, "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"fedrobust: error: checkpoint: {path} {message}"), err


def test_an_undamaged_checkpoint_still_resumes(folder):
    assert resume_round(resume_cfg(folder)) == 2
    assert checkpoint.check_client_states(folder) == len(list((folder / "clients").glob("*/round-*.bin")))


# ---------------------------------------------------------------------------- damaged during the run
def test_a_client_whose_state_file_is_damaged_replies_a_failed_fit_and_does_not_raise(folder):
    from flwr.client import Client
    from flwr.common import Code, FitIns, Parameters, RecordDict

    from fedrobust.run.app import _CheckpointFiles
    from fedrobust.clients.round import RoundClient

    class Untouched(Client):
        def fit(self, ins):
            raise AssertionError("the inner client must not run on a state that failed to load")

    path = client_file(folder)
    flip(path)
    client = RoundClient(Untouched(), RecordDict(), int(path.parent.name), torch.device("cpu"), _CheckpointFiles(folder))
    res = client.fit(FitIns(Parameters(tensors=[], tensor_type=""), {"server-round": 3, "seed": 0}))
    assert res.status.code != Code.OK and res.num_examples == 0
    assert res.status.message.startswith(f"checkpoint: {path} is damaged") and "\n" not in res.status.message


@pytest.mark.parametrize("api", ["legacy", "message"])
def test_a_state_file_damaged_during_the_run_fails_that_client_in_one_line(folder, api, monkeypatch, caplog):
    """A file that passed the up-front check but is damaged when a client loads it: the client is
    a failed client of its round, the server logs one line naming the file, nothing raises."""
    damaged = newest_client_files(folder)
    for path in damaged:
        flip(path)
    monkeypatch.setattr(checkpoint, "check_client_states", lambda directory: 0)  # damaged after the check
    with caplog.at_level(logging.WARNING, logger="flwr"):
        results = run_inprocess(resume_cfg(folder).replace(api=api))
    rounds = results["rounds"][2:]
    failed = {p for r in rounds for p in r.get("failed_partitions", [])}
    assert failed and failed <= {int(p.parent.name) for p in damaged}
    assert sum(r["failed_clients"] for r in rounds) >= len(failed)
    lines = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert len(lines) == sum(r["failed_clients"] for r in rounds)  # one line per failed fit
    assert all("\n" not in line and any(str(p) in line for p in damaged) for line in lines)
    assert "Traceback" not in caplog.text


@pytest.mark.slow
def test_engine_client_with_a_state_file_damaged_during_the_run_logs_no_traceback(folder, monkeypatch, caplog, capfd):
    """Through Flower's simulation engine (Ray actors load the files): one line each, no traceback."""
    for path in newest_client_files(folder):
        flip(path)
    monkeypatch.setattr(checkpoint, "check_client_states", lambda directory: 0)  # damaged after the check
    with caplog.at_level(logging.WARNING, logger="flwr"):
        results = fedrobust.simulate(resume_cfg(folder))
    failed = sum(r["failed_clients"] for r in results["rounds"][2:])
    lines = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert failed >= 1 and len(lines) == failed
    assert all(str(folder / "clients") in line and "\n" not in line for line in lines)
    out = capfd.readouterr()  # what Ray's actors print
    assert "Traceback" not in caplog.text + out.out + out.err
