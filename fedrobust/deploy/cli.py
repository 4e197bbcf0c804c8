"""The command line of ``python -m fedrobust.deploy`` and ``fedrobust deploy``: one job, parsing and dispatching.

``up``, ``down`` and ``certs``; errors are printed as ``fedrobust deploy: error: ...`` with exit
status 1.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .certs import make_certificates, make_node_keys
from .commands import ISOLATIONS
from .lifecycle import DEFAULT_CONNECTION, down, up

__all__ = ["build_parser", "main"]


def build_parser(prog: str = "python -m fedrobust.deploy") -> argparse.ArgumentParser:
    """The parser of ``up``, ``down`` and ``certs``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run fedrobust on Flower's Deployment Engine (SuperLink + SuperNodes, TLS, node auth).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""\
on one machine:
  {prog} up --supernodes 3 --run-dir DIR    (prints the flwr run command)
  fedrobust new-app APP    (an App folder; a checkout of fedrobust is one too)
  FLWR_HOME=DIR/flwr-home flwr run APP {DEFAULT_CONNECTION} --run-config "num-clients=3 clients-per-round=3"
  {prog} down --run-dir DIR
across machines: {prog} certs --out DIR --host SUPERLINK_HOST --supernodes N writes the CA, the
SuperLink's certificate and one key pair per SuperNode; start flower-superlink with the certificate
and flower-supernode on each machine with the CA and its key pair (docs/deployment.md in fedrobust's
source repository shows the full command lines).""",
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
            print(f"stop: {prog} down --run-dir {shlex.quote(dep.run_dir)}")  # as it was started
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
