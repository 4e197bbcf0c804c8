"""The same federated workload through a plain torch loop, fedrobust's in-process engine and Flower's Ray engine.

The workload: mean-SGD on the gradient protocol (each of the clients, all sampled every round,
sends one minibatch gradient at the global model; the server steps x ← x − lr · mean(g)), with
the test split evaluated centrally after every round. The plain loop, written out below, does
exactly that work with the same model, initial weights, partitions and minibatch draws
(``fedrobust.clients.base.batch_generator``) and dropout draws (the global RNG seeded per client and
round, as a client's fit does), and nothing else: no messages, no validation, no
stacking. Its final model is compared with the engines' (largest absolute difference).

The in-process engine runs three times: with the defaults (the whole run, server and clients, at
``client-threads = 1``, as Flower's engine runs its actors, so both give the same model bit for
bit); with ``client-threads = 0``, the whole run on all of the process's threads as the plain
loop is (the gradients then differ from the actors' in the last bits); and through the Message
API at the defaults (``api = "message"``: ``fedrobust.messageapi.run_local``, the
``MessageStrategy``'s rounds on fedrobust's ``LocalGrid``), the same model as the legacy API's.
The plain loop runs twice
too when the process has more than one thread: on all of them, the yardstick of every ratio, and
at the defaults' one thread, so that the defaults are also compared with plain torch on the same
cores (its final model against the defaults' is the last column of that row).

For each size (mlp and lenet on mnist5k; 10 and 100 clients) it prints, from one run, seconds
per round (the median over rounds 2 and later), start-up seconds (everything before round 1, the
dataset already in memory: Ray's start-up for the Ray engine), each engine's ratio to the plain loop, and, for the in-process
engine, where a round goes by phase (clients' fit, aggregation, evaluation, the rest: client
construction, serialisation, validation and stacking; an evaluation that ran beside the next round's
fits, in the engine's evaluation thread, is listed as such and is not part of a round's path); for the Ray engine, as seen from the
driver, one message's round trip through Ray (its transport both ways, the wait for a free actor
and the client's work in it), the aggregation and the evaluation.

Targets (issue: experiment throughput): in-process ≤ 1.3x the plain loop per round; Ray ≤ 2x per
round at 10 clients; a whole 20-round Ray run within 10 s of the in-process run.

Run: ``.venv/bin/python scripts/bench_engines.py`` (``--rounds``, ``--sizes mlp:10,lenet:100``,
``--repeat 3``: the plain loop and the in-process rows three times in turns, each row's fastest run,
``--no-ray``, ``--device cuda``: all three on the GPU, the Ray engine with its default GPU share
per client).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import threading
import time

import torch

from fedrobust.clients.base import batch_generator
from fedrobust.clients.round import round_seed
from fedrobust.config import RunConfig
from fedrobust.core.threads import kept_torch_threads
from fedrobust.core.rng import seeded_global_rng
from fedrobust.models import flat_grad, flat_params, get_model, set_flat_params
from fedrobust.run.build import client_indices, load_splits
from fedrobust.run.inprocess import EVALUATION_THREAD, run_inprocess
from fedrobust.run.simulation import local_actors

DEFAULT_SIZES = "mlp:10,mlp:100,lenet:10"
ALL_THREADS = "inprocess, client-threads 0"
"""The in-process engine on all of the process's threads, as the plain loop (the default,
``client-threads = 1``, computes a run as a Ray actor does: one thread, the same bits)."""
MESSAGE_API = "inprocess, Message API"
"""The in-process engine through the Message API, at the defaults."""
BESIDE = "beside the next round's fits"
"""The label's suffix of a phase that ran in the in-process engine's evaluation thread."""


def config(model: str, clients: int, rounds: int, device: str = "cpu") -> RunConfig:
    return RunConfig(strategy="mean-sgd", dataset="mnist5k", model=model, num_clients=clients,
                     clients_per_round=clients, rounds=rounds, lr=0.1, batch_size=32, seed=0, device=device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop_at(cfg: RunConfig, threads: int) -> tuple[float, list[float], torch.Tensor]:
    """:func:`plain_loop` at ``threads`` torch threads, the caller's count back after it."""
    with kept_torch_threads():
        torch.set_num_threads(threads)
        return plain_loop(cfg)


def plain_loop(cfg: RunConfig) -> tuple[float, list[float], torch.Tensor]:
    """(start-up s, per-round s, final model) of the workload in plain torch."""
    device = cfg.torch_device()
    t0 = time.perf_counter()
    splits = load_splits(cfg)
    model = get_model(cfg.model, input_shape=splits.input_shape, num_classes=splits.num_classes,
                      seed=cfg.seed).to(device)
    parts = []
    for i in range(cfg.num_clients):
        idx = torch.from_numpy(client_indices(cfg, i))
        parts.append((torch.from_numpy(splits.x_train)[idx].to(device), torch.from_numpy(splits.y_train)[idx].to(device)))
    x_test, y_test = torch.from_numpy(splits.x_test).to(device), torch.from_numpy(splits.y_test).to(device)
    x = flat_params(model).clone()
    startup = time.perf_counter() - t0
    rounds = []
    for r in range(1, cfg.rounds + 1):
        t = time.perf_counter()
        grads = []
        model.train()
        for i, (xs, ys) in enumerate(parts):
            set_flat_params(model, x)
            idx = torch.randperm(len(xs), generator=batch_generator(cfg.seed, i, r))[: min(cfg.batch_size, len(xs))]
            idx = idx.to(device)
            with seeded_global_rng(round_seed(cfg.seed, i, r)):  # dropout draws, as a client's fit
                model.zero_grad(set_to_none=False)
                model.loss(model(xs[idx]), ys[idx]).backward()
            grads.append(flat_grad(model).clone())
        x = x - cfg.lr * torch.stack(grads).mean(dim=0)
        set_flat_params(model, x)
        model.eval()
        with torch.no_grad():
            out = model(x_test)
            float(model.loss(out, y_test)), float((model.predict(out) == y_test).float().mean())
        _sync(device)
        rounds.append(time.perf_counter() - t)
    return startup, rounds, x


@contextlib.contextmanager
def timed(spent: dict[str, float], label: str, owner: type, method: str, calls: list[float] | None = None):
    """Add the seconds spent in ``owner.method`` to ``spent[label]`` while the block runs (and
    each call's seconds to ``calls``, when given)."""
    original = getattr(owner, method)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            took = time.perf_counter() - t
            beside = threading.current_thread().name.startswith(EVALUATION_THREAD)  # the in-process engine's
            key = f"{label} {BESIDE}" if beside else label
            spent[key] = spent.get(key, 0.0) + took
            if calls is not None:
                calls.append(took)

    setattr(owner, method, wrapper)
    try:
        yield
    finally:
        setattr(owner, method, original)


def engine(cfg: RunConfig, name: str) -> tuple[float, list[float], torch.Tensor | None, dict, float]:
    """(start-up s, per-round s, final model or None, phase seconds per round, wall s) of one run."""
    seen: dict[str, torch.Tensor] = {}
    spent: dict[str, float] = {}
    trips: list[float] = []
    t0 = time.perf_counter()
    if name == "inprocess":
        from fedrobust.clients.round import RoundClient
        from fedrobust.run.inprocess import LocalProxy
        from fedrobust.strategies.base import VectorStrategy

        with contextlib.ExitStack() as stack:
            stack.enter_context(timed(spent, "messages", LocalProxy, "fit"))
            stack.enter_context(timed(spent, "client construction", LocalProxy, "_client"))
            stack.enter_context(timed(spent, "fit", RoundClient, "fit"))
            stack.enter_context(timed(spent, "evaluation", VectorStrategy, "measure"))
            results = run_inprocess(cfg, after_round=lambda s, r: seen.__setitem__("x", s.x.clone()), warn=False)
    else:
        from flwr.server.superlink.fleet.vce.backend.raybackend import RayBackend

        from fedrobust import simulate
        from fedrobust.run import ray_transport
        from fedrobust.strategies.base import VectorStrategy

        # The backend simulate runs: fedrobust's (a round's parameters shared) where Flower's parts are as expected.
        backend = ray_transport.SharedParametersBackend if ray_transport.flower_parts_as_expected() else RayBackend

        with contextlib.ExitStack() as stack:
            # In the driver: each message's round trip through Ray (its transport, the wait for a free
            # actor and the client's work there), and the server's evaluation.
            stack.enter_context(timed(spent, "ray messages", backend, "process_message", trips))
            stack.enter_context(timed(spent, "evaluation", VectorStrategy, "measure"))
            results = simulate(cfg, warn=False)
    wall = time.perf_counter() - t0
    rounds = results["rounds"]
    per_round = [r["round_seconds"] for r in rounds]
    startup = results.get("startup_seconds") or (wall - sum(per_round))
    phases = {}
    if name == "ray":
        n = len(rounds)
        phases = {  # the median: the first message of each actor waits for the actor to start
            "one message's round trip through Ray (median s)": statistics.median(trips) if trips else 0.0,
            "aggregation per round (mean s)": sum(r.get("aggregation_seconds") or 0.0 for r in rounds) / n,
            "evaluation per round (mean s)": spent.get("evaluation", 0.0) / (n + 1),
        }
    elif spent:
        n = len(rounds)
        messages = spent.get("messages", 0.0)
        phases = {
            "client construction": spent.get("client construction", 0.0) / n,
            "clients' fit": spent.get("fit", 0.0) / n,
            "message handling": max(0.0, messages - spent.get("client construction", 0.0) - spent.get("fit", 0.0)) / n,
            "aggregation": sum(r.get("aggregation_seconds") or 0.0 for r in rounds) / n,
            "evaluation": spent.get("evaluation", 0.0) / (n + 1),  # the initial model's too
        }
        if f"evaluation {BESIDE}" in spent:  # in the engine's evaluation thread: off the rounds' path
            phases[f"evaluation {BESIDE}"] = spent[f"evaluation {BESIDE}"] / n
    return startup, per_round, seen.get("x"), phases, wall


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="model:clients pairs, e.g. mlp:10,lenet:100")
    parser.add_argument("--no-ray", action="store_true", help="skip Flower's Ray engine")
    parser.add_argument("--device", default="cpu", help="the run key device for all three, e.g. cuda [cpu]")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of the plain loop and the in-process engine, in turns; each row shows its fastest [1]")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}; mean-sgd on mnist5k, all clients every "
          f"round, one gradient of 32 each, test evaluation every round; {args.rounds} rounds; medians over rounds 2..; "
          f"the fastest of {args.repeat} run(s) in turns (Ray: one)")
    verdicts = []
    for size in args.sizes.split(","):
        model, clients = size.split(":")
        cfg = config(model, int(clients), args.rounds, args.device)
        load_splits(cfg)  # the dataset is read once per process, before any timing
        names = ("inprocess", ALL_THREADS, MESSAGE_API) + (() if args.no_ray else ("ray",))
        same = cfg.client_threads  # the defaults' thread count
        plain_same = f"plain torch loop, {same} thread{'s' if same > 1 else ''}" if torch.get_num_threads() > same else None
        runs: dict[str, list] = {}
        for turn in range(args.repeat):  # in turns, so that a noisy stretch of the machine hits every row
            runs.setdefault("plain", []).append(plain_loop(cfg))
            if plain_same:
                runs.setdefault(plain_same, []).append(plain_loop_at(cfg, same))
            for name in names if turn == 0 else names[:3]:  # the Ray engine once: its start-up is long
                run_cfg = {ALL_THREADS: cfg.replace(client_threads=0), MESSAGE_API: cfg.replace(api="message")}.get(name, cfg)
                runs.setdefault(name, []).append(engine(run_cfg, "ray" if name == "ray" else "inprocess"))
        fastest = {name: min(rs, key=lambda r: statistics.median(r[1][1:] or r[1])) for name, rs in runs.items()}
        p_start, p_rounds, p_x = fastest["plain"]
        p = statistics.median(p_rounds[1:] or p_rounds)
        print(f"\n### {model}, {clients} clients\n")
        print("| engine | s/round | × plain | start-up s | whole run s | final model: max |Δ| vs plain |")
        print("|---|---:|---:|---:|---:|---:|")
        print(f"| plain torch loop | {p:.3f} | 1.00 | {p_start:.2f} | {p_start + sum(p_rounds):.1f} | – |")
        p1 = None
        if plain_same:
            s_start, s_rounds, s_x = fastest[plain_same]
            p1 = statistics.median(s_rounds[1:] or s_rounds)
            defaults_x = fastest["inprocess"][2]
            diff = f"{float((defaults_x.to(s_x.device) - s_x).abs().max()):.1e} (vs the defaults)" if defaults_x is not None else "–"
            print(f"| {plain_same} | {p1:.3f} | {p1 / p:.2f} | {s_start:.2f} | {s_start + sum(s_rounds):.1f} | {diff} |")
        walls = {}
        for name in names:
            start, rounds, x, phases, wall = fastest[name]
            s = statistics.median(rounds[1:] or rounds)
            walls[name] = wall
            diff = f"{float((x.to(p_x.device) - p_x).abs().max()):.1e}" if x is not None else "–"
            print(f"| {name} | {s:.3f} | {s / p:.2f} | {start:.2f} | {wall:.1f} | {diff} |")
            if name == MESSAGE_API:  # its messages go through the LocalGrid, not LocalProxy: no phases
                verdicts.append(f"{model}/{clients}: in-process (Message API) ≤ 1.3x plain per round: "
                                f"{'holds' if s <= 1.3 * p else 'fails'} ({s / p:.2f}x)")
            elif name != "ray":
                # phases are means over every round; an evaluation beside the next fits is off the rounds' path
                rest = sum(rounds) / len(rounds) - sum(v for k, v in phases.items() if BESIDE not in k)
                print("| in-process, per round (mean s) | " + ", ".join(f"{k} {v:.3f}" for k, v in phases.items())
                      + f"; the rest {rest:.3f} (server: parameters, validation, stacking"
                      + (", the wait for the evaluation beside" if any(BESIDE in k for k in phases) else "") + ") | | | | |")
                verdicts.append(f"{model}/{clients}: {name.replace('inprocess', 'in-process')} ≤ 1.3x plain per round: "
                                f"{'holds' if s <= 1.3 * p else 'fails'} ({s / p:.2f}x)")
                if name == "inprocess" and p1:
                    verdicts.append(f"{model}/{clients}: in-process ≤ 1.3x plain at its own {same} thread(s) per round: "
                                    f"{'holds' if s <= 1.3 * p1 else 'fails'} ({s / p1:.2f}x)")
            else:
                print("| Ray, in the driver | " + ", ".join(f"{k} {v:.3f}" for k, v in phases.items())
                      + f" ({local_actors(cfg)} actors serve the messages side by side) | | | | |")
            if name == "ray" and int(clients) == 10:
                verdicts.append(f"{model}/{clients}: Ray ≤ 2x plain per round: {'holds' if s <= 2 * p else 'fails'} "
                                f"({s / p:.2f}x)")
        if "ray" in walls and args.rounds == 20:
            gap = walls["ray"] - walls["inprocess"]
            verdicts.append(f"{model}/{clients}: a 20-round Ray run within 10 s of the in-process run: "
                            f"{'holds' if gap <= 10 else 'fails'} ({gap:+.1f} s)")
    print("\n" + "\n".join(verdicts))


if __name__ == "__main__":
    main()
