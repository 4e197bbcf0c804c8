"""The paper reproduction scripts (scripts/reproduce_00N.py): their helpers, and a tiny end-to-end run of each."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _strategies_ii import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))  # the scripts import their shared helpers (_reproduce) by name

import _reproduce  # noqa: E402


def _smoke(script: str, tmp_path: Path, *extra: str) -> tuple[str, Path]:
    """Run ``script --smoke`` into tmp_path; return its stdout and the report folder."""
    report = tmp_path / "report"
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / script), "--smoke", "--output", str(tmp_path / "raw"), "--report-dir",
         str(report), *extra],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout, report


def _check_report(report: Path, pngs: set[str]) -> str:
    text = (report / "README.md").read_text()
    assert "| figure" in text and "| holds |" in text
    assert "## Where we differ" in text
    assert {p.name for p in report.glob("*.png")} == pngs
    for name in pngs:
        size = (report / name).stat().st_size
        assert 1000 < size <= _reproduce.MAX_PNG_BYTES, (name, size)
        assert f"]({name})" in text  # shown in the README
    return text


# ------------------------------------------------------------------------------------------ helpers


def test_md_table_and_fmt():
    assert _reproduce.md_table(["a", "b"], [[1, None]]) == "| a | b |\n|---|---|\n| 1 | None |"
    assert _reproduce.fmt(0.12345) == "0.123"
    assert _reproduce.fmt(None) == _reproduce.fmt(float("nan")) == "–"


def test_json_cache_computes_once_and_survives_a_reload(tmp_path):
    calls = []
    cache = _reproduce.JsonCache(tmp_path / "c.json")
    assert cache.get("k", lambda: calls.append(1) or [1, 2]) == [1, 2]
    assert _reproduce.JsonCache(tmp_path / "c.json").get("k", lambda: calls.append(1) or [3]) == [1, 2]
    assert calls == [1]


def _exit_message(script: str, argv: list[str], capsys) -> str:
    """Call the script's main(argv) in this process; return the parser's error (exit status 2)."""
    with pytest.raises(SystemExit) as exc:
        load_script(SCRIPTS / script).main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("script", ["reproduce_002.py", "reproduce_003.py", "reproduce_004.py"])
def test_full_and_smoke_exclude_each_other(script, capsys):
    assert "exclude each other" in _exit_message(script, ["--full", "--smoke"], capsys)
    assert "--seeds must be >= 1" in _exit_message(script, ["--seeds", "0"], capsys)


def test_004_refuses_the_ray_engine_and_a_libsvm_set_without_its_folder(capsys):
    assert "only --engine inprocess" in _exit_message("reproduce_004.py", ["--engine", "ray"], capsys)
    assert "needs --data-dir" in _exit_message("reproduce_004.py", ["--dataset", "a9a"], capsys)


def test_004_saddle_toy_fedcure_escapes_and_gradient_descent_does_not():
    saddle = load_script(SCRIPTS / "reproduce_004.py").run_saddle(rounds=5, inits=3)
    assert saddle["fed-cure"].shape == (3, 5)
    assert (saddle["fed-cure"][:, -1] < -1).all()  # f = 0 at the saddle, unbounded below
    assert (np.abs(saddle["gradient descent"][:, -1]) < 1e-3).all()


def test_004_iterations_to_counts_solver_steps():
    mod = load_script(SCRIPTS / "reproduce_004.py")
    assert mod.iterations_to(np.array([1.0, 0.5, 0.01]), 10, tol=0.02) == 30
    assert mod.iterations_to(np.array([1.0, 0.5]), 1, tol=0.02) is None


# ---------------------------------------------------------------------------- end to end, tiny


@pytest.mark.slow
def test_reproduce_002_smoke(tmp_path):
    stdout, report = _smoke("reproduce_002.py", tmp_path)
    text = _check_report(report, {"least_squares.png", "mlp_gaussian.png", "mlp_attacks.png"})
    for claim in ("Fig. 1 (", "Fig. 2 (", "Fig. 3 (", "Fig. 6a", "Fig. 7a", "Fig. 4a", "Fig. 5b", "Fig. 7b"):
        assert claim in text and claim in stdout, claim
    # resumable: a rerun reuses every run (nothing new is computed) and writes the same tables
    def raw():
        return {p: p.read_bytes() for p in sorted((tmp_path / "raw").rglob("*.json*"))}

    before = raw()
    assert len(before) == 2  # least_squares.json and mlp/results.jsonl
    _smoke("reproduce_002.py", tmp_path)
    assert raw() == before
    assert (report / "README.md").read_text() == text


@pytest.mark.slow
def test_reproduce_003_smoke(tmp_path):
    stdout, report = _smoke("reproduce_003.py", tmp_path)
    text = _check_report(report, {"noniid_curves.png", "noniid_final.png"})
    for name in ("c-rsa", "rsa", "mean-sgd", "cmd", "krum", "signsgd-mv"):
        assert f"| {name} |" in text
    assert "upload ratio 0.50" in text  # c-rsa with ratio 0.5 sends half of rsa's signs


@pytest.mark.slow
def test_reproduce_004_smoke(tmp_path):
    stdout, report = _smoke("reproduce_004.py", tmp_path)
    text = _check_report(report, {"saddle.png", "logistic_accuracy.png", "robust_loss.png", "iterations.png"})
    assert "| yes |" in text.split("| Fig. 1a, saddle toy")[1].split("\n")[0]
    for attack in ("gaussian", "label-flip", "label-shift", "negative-update", "mean-sgd gaussian"):
        assert f"| {attack} |" in text, attack


def test_001_rejects_full_without_its_data_folder(capsys):
    assert "--full needs --data-dir" in _exit_message("reproduce_001.py", ["--full"], capsys)
    assert "exclude each other" in _exit_message("reproduce_001.py", ["--full", "--smoke"], capsys)


@pytest.mark.slow
def test_reproduce_001_smoke(tmp_path):
    stdout, report = _smoke("reproduce_001.py", tmp_path)
    text = _check_report(report, {"bit-flip.png", "gaussian.png"})
    for claim in ("Table 3, clean", "Table 3, bit-flip 0.4", "Table 3, additive 0.2", "backdoor 0.4",
                  "Fig. 6, memory ablation"):
        assert claim in text and claim in stdout, claim
    assert "| bit-flip | 0.2 |" in text and "(ASR " in text  # the Table 3 analogue and the backdoor table
    assert "| 0.01 |" in text  # the ablation's smallest block fraction
