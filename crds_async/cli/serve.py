"""``crds-batch serve``: a CRDS-protocol server over a cache directory (site mirror, test double).

Runs until interrupted.  Fault options make it misbehave on purpose, for tests and
benchmarks of clients: ``--latency``, ``--bandwidth``, ``--fault-rate`` with ``--faults``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a CRDS cache over the CRDS protocol (JSON-RPC + file downloads)",
        description="Serve CACHE over the CRDS client protocol: POST /json/<method>/<id>/ and "
        "GET /unchecked_get/{mappings,references,config}/<obs>/<name>.",
    )
    parser.add_argument("--cache", required=True, type=Path, help="CRDS cache root to serve")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (0: any free port; default 8080)")
    parser.add_argument("--observatory", default=None, help="observatory get_server_info describes")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--bandwidth", type=float, default=0.0,
                        help="total bytes/s for all downloads together (0: unlimited)")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="probability of a fault per request")
    parser.add_argument("--faults", default="error500,reset,truncate,corrupt,stall",
                        help="comma-separated fault kinds: error500,reset,truncate,corrupt,stall")
    parser.add_argument("--stall-seconds", type=float, default=30.0, help="how long a stall fault lasts")
    parser.add_argument("--fault-rpc", action="store_true", help="also inject error500/reset into JSON-RPC")
    parser.add_argument("--seed", type=int, default=None, help="seed for the fault sequence")
    parser.add_argument("--datasets", type=Path, default=None, metavar="DB",
                        help="dataset catalogue (crds-batch catalogue build) answering get_dataset_ids and "
                        "get_dataset_headers_by_id; opened read-only")
    parser.add_argument("--max-headers-per-rpc", type=int, default=None, metavar="N",
                        help="dataset headers per get_dataset_headers_by_id call, as get_server_info announces "
                        "(default: the served server_config's)")
    parser.set_defaults(handler=run_serve_command)


def run_serve_command(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..fetch.faults import FaultPlan
    from ..fetch.server import CrdsServer, run_server

    try:
        faults = FaultPlan(latency=args.latency, bandwidth=args.bandwidth, rate=args.fault_rate,
                           kinds=tuple(k for k in args.faults.split(",") if k), stall_seconds=args.stall_seconds,
                           rpc=args.fault_rpc, seed=args.seed)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.max_headers_per_rpc is not None and args.max_headers_per_rpc < 1:
        raise ConfigError(f"--max-headers-per-rpc {args.max_headers_per_rpc}: must be at least 1")
    from ..engine.datasets import RulesService

    catalogue = None
    if args.datasets is not None:
        from ..archive.catalogue import DatasetCatalogue

        catalogue = DatasetCatalogue(args.datasets, readonly=True)
    server = CrdsServer(args.cache, args.observatory, faults, datasets=catalogue,
                        max_headers_per_rpc=args.max_headers_per_rpc)
    server.rules_service = RulesService(server.cfg)

    async def main() -> int:
        try:
            runner = await run_server(server, args.host, args.port)
        except OSError as exc:  # busy port, unknown host, no permission: one line, fatal
            raise ConfigError(f"cannot listen on {args.host}:{args.port}: "
                              f"{exc.strerror or exc}") from None
        counts = {o: len(c.entries) for o, c in server.catalogues.items()}
        if server.datasets is not None:
            counts["datasets"] = server.datasets.count()
        # SIGTERM (a service manager's stop) ends it as Ctrl-C does: requests in progress
        # are answered, then the server closes.  SIGINT keeps its disposition: a server
        # started in the background by a shell (``&``) ignores it, as such jobs do.
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        # The first line is machine-readable: tests and benchmarks read the URL from it.
        print(f"serving {server.cache} at {server.base_url} ({counts})", flush=True)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
        return 0

    try:
        status = asyncio.run(main())
    except KeyboardInterrupt:
        status = 0
    print("crds-batch serve: stopped", file=sys.stderr)
    return status
