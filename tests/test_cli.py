"""`fedrobust run`: one error line per user mistake (exit 2), and a full mean-SGD run (slow)."""

import subprocess
import sys
from pathlib import Path

import pytest

from fedrobust.cli import main
from fedrobust.core.results import read_results


def test_config_mistakes_print_one_line_each_and_exit_2(capsys):
    assert main(["run", "--lr", "-1", "--strategy", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("fedrobust: error: ") for line in err)
    assert "strategy must be one of" in err[0] and "lr must be > 0" in err[1]
    assert "Traceback" not in "".join(err)


def test_runtime_mistakes_are_caught_before_the_simulation_starts(capsys):
    assert main(["run", "--dataset", "mnist"]) == 2  # the full MNIST needs data-dir
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("fedrobust: error: ") and "data-dir is required" in line
    assert "train-images-idx3-ubyte" in line  # names the files it expects


def test_bad_flag_values_exit_2_through_argparse():
    with pytest.raises(SystemExit) as exc:
        main(["run", "--num-clients", "ten"])
    assert exc.value.code == 2


@pytest.mark.slow
def test_fedrobust_run_mean_sgd_reaches_90_percent(tmp_path):
    out = tmp_path / "mean-sgd.json"
    script = Path(sys.executable).with_name("fedrobust")
    flags = "--strategy mean-sgd --dataset mnist5k --model mlp --num-clients 10 --clients-per-round 10"
    flags += f" --rounds 60 --lr 0.3 --batch-size 64 --output {out}"
    done = subprocess.run([str(script), "run", *flags.split()], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "60/60" in done.stdout + done.stderr  # the progress bar reached the last round
    results = read_results(out)
    assert len(results["rounds"]) == 60 and results["config"]["strategy"] == "mean-sgd"
    assert results["rounds"][-1]["accuracy"] >= 0.90, [r["accuracy"] for r in results["rounds"]][-10:]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--attack", "bit-flip", "--attack-params", "foo=1"], "attack-params: attack 'bit-flip' takes no parameter 'foo'"),
        (["--strategy", "norm-threshold", "--compressor", "top-k", "--compressor-params", "kk=3"],
         "compressor-params: compressor 'top-k' takes no parameter 'kk'"),
        (["--strategy", "norm-threshold", "--compressor", "top-k", "--compressor-params", "k=10000000"],
         "compressor-params: k=10000000 is larger than the model's d="),
        (["--byzantine-fraction", "1.0"], "byzantine-fraction must lie in [0, 1), got 1.0"),
        (["--dataset", "nope"], "dataset must be one of mnist5k, "),
        (["--dataset", "cifar10", "--data-dir", "no-such-folder"], "cifar10: missing data_batch_1, "),
        (["--round-timeout", "-1"], "round-timeout must be a finite number of seconds >= 0"),
        (["--strategy", "signsgd-mv", "--compressor", "qsgd"], "signsgd-mv sends sign(g)"),
    ],
)
def test_each_user_mistake_is_one_line_naming_the_key(args, expected, capsys):
    assert main(["run", *args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fedrobust: error: ") and expected in err[0], err
