"""The built wheel works on its own: installed (not editable) into a fresh venv, run outside the checkout.

The wheel is built from a copy of the sources, so the checkout gets no build folder. The fresh venv
gets the wheel alone; its dependencies (torch, flwr, ...) come from this venv through a ``.pth``
path line, which adds their folder but runs none of its ``.pth`` files, so this venv's editable
fedrobust stays invisible there. Flower's commands get copies in the fresh venv whose interpreter
line is its python, as pip would write them. No subprocess here sees this process's PYTHONPATH:
Flower's Ray backend sets it to the driver's ``sys.path`` once a test has run a simulation in
process, and pip would then take the checkout's fedrobust for installed and skip the wheel.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from _flwr_cli import flwr, flwr_json, local_superlink_ports, pids_with_env, stop, wait_for_run

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _build_wheel(tmp: Path) -> Path:
    source = tmp / "source"
    shutil.copytree(ROOT / "fedrobust", source / "fedrobust", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "dist"), str(source)], check=True, capture_output=True, timeout=300,
                   env=_clean_env())
    (wheel,) = (tmp / "dist").glob("fedrobust-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120,
                   env=_clean_env())
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--ignore-installed", str(wheel)], check=True, capture_output=True, timeout=300, env=_clean_env())
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True, env=_clean_env()).stdout.strip())
    (site / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for tool in Path(sys.executable).parent.iterdir():  # flwr, flower-superlink, ...
        if tool.name.startswith(("flwr", "flower-")):
            _, body = tool.read_text().split("\n", 1)
            (venv / "bin" / tool.name).write_text(f"#!{python}\n{body}")
            (venv / "bin" / tool.name).chmod(0o755)
    return venv


def _run(venv: Path, args, cwd: Path, env=None, timeout=600) -> str:
    done = subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_wheel_alone_runs_help_the_demo_and_a_new_app(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "fedrobust/grids/demo.toml" in names and "fedrobust/grids/benchmark-full.toml" in names
    assert "fedrobust/grids/psi04/momentum.toml" in names
    venv = _fresh_venv(tmp_path, wheel)
    work = tmp_path / "work"
    work.mkdir()
    env = _clean_env()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    where = _run(venv, ["python", "-c", "import fedrobust; print(fedrobust.__file__)"], work, env)
    assert Path(where.strip()).is_relative_to(venv)  # the wheel's copy, not the checkout's

    assert "demo" in _run(venv, ["fedrobust", "--help"], work, env)
    assert "--max-cells" in _run(venv, ["fedrobust", "demo", "--help"], work, env)
    listed = _run(venv, ["fedrobust", "list"], work, env)
    assert "benchmark-full" in listed and "bgmd" in listed
    assert "fedrobust new-app APP" in _run(venv, ["fedrobust", "deploy", "--help"], work, env)

    # The demo's first cell (FedAvg, clean), one round, in process; the rest is left for a rerun.
    printed = _run(venv, ["fedrobust", "demo", "--engine", "inprocess", "--rounds", "1", "--max-cells", "1",
                          "--quiet"], work, env)
    assert "7 of 8 cells not run yet" in printed and "| fedavg, ψ=0 |" in printed
    (line,) = (work / "results" / "demo" / "results.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["config"]["strategy"] == "fedavg" and record["config"]["byzantine-fraction"] == 0.0
    assert record["results"]["rounds"][-1]["accuracy"] > 0.3
    assert (work / "results" / "demo" / "report" / "report.md").is_file()

    # A Flower App from the wheel, run by `flwr run` on a local SuperLink (Flower's simulation engine).
    assert "flwr run app" in _run(venv, ["fedrobust", "new-app", "app", "--dataset", "digits", "--rounds", "1",
                                         "--num-clients", "2", "--clients-per-round", "2"], work, env)
    assert tomllib.loads((work / "app" / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]["rounds"] == 1
    home = tmp_path / "flwr-home"
    flwr_env = {**env, "FLWR_HOME": str(home), "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
                **local_superlink_ports()}
    try:
        where = {"cwd": work, "executable": venv / "bin" / "flwr"}
        run = flwr_json(["run", "app", "--format", "json", "--federation-config",
                         "num-supernodes=2 client-resources-num-cpus=1"], flwr_env, **where)
        status = wait_for_run(run["run-id"], flwr_env, 300, **where)
        assert status == "finished:completed", flwr(["log", str(run["run-id"]), "--show"], flwr_env,
                                                    **where).stdout[-4000:]
    finally:
        stop(pids_with_env("FLWR_HOME", home))

