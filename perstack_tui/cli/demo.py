"""``perstack-tui demo``: write a realistic demo storage, optionally keep a job running live."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the engine is imported where used: ``demo --help`` loads no models
    from perstack_tui.storage.base import KeyValueStorage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--path", metavar="DIR", help="directory to write (default: ./perstack; or use --storage)"
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="then keep simulated jobs running until interrupted (Ctrl-C)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument(
        "--pace",
        type=float,
        default=0.6,
        metavar="SECONDS",
        help="typical time between live events (default 0.6; streaming deltas are faster)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="random seed of the static jobs (default: fixed)"
    )


def run(args: argparse.Namespace) -> int:
    from perstack_tui.config import ConfigError, StorageConfig
    from perstack_tui.storage.factory import create_storage, open_storage

    if args.path and args.storage:
        raise ConfigError("give --path or --storage, not both")
    if args.pace <= 0:
        raise ConfigError(f"--pace: expected a positive number of seconds, got {args.pace}")
    if args.storage or args.config:
        storage, _ = open_storage(args)
    else:
        storage = create_storage(StorageConfig(type="filesystem", path=args.path or "perstack"))
    return asyncio.run(_main(storage, args))


async def _main(storage: KeyValueStorage, args: argparse.Namespace) -> int:
    from perstack_tui import demo

    say = (lambda _text: None) if args.quiet else (lambda text: print(text, flush=True))
    where = storage.storage_info().location
    try:
        marker = await demo.read_marker(storage)
        if marker is None and not await demo.is_empty(storage):
            print(
                f"perstack-tui: refusing to write the demo into {where}: it is not empty and "
                f"not a previous demo (no {demo.MARKER_KEY}). Choose an empty --path.",
                file=sys.stderr,
            )
            return 2
        if marker is None or not args.live:
            seed = demo.DEFAULT_SEED if args.seed is None else args.seed
            jobs = await demo.write_demo(storage, seed=seed)
            say(f"wrote {len(jobs)} demo jobs to {where}")
            for job in jobs.values():
                say(f"  {job.job_id}  {job.title}")
        if args.live:
            await _live(storage, args, say)
    finally:
        await storage.close()
    return 0


async def _live(storage: KeyValueStorage, args: argparse.Namespace, say) -> None:  # type: ignore[no-untyped-def]
    from perstack_tui import demo

    writer = demo.LiveWriter(
        storage,
        pace=args.pace,
        on_job_started=lambda job: say(f"live job {job.job_id}: {job.title}"),
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # not on every platform, nor outside the main thread
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, writer.stop)
    say(f"writing live jobs to {storage.storage_info().location} (Ctrl-C to stop)")
    await writer.run()
    say(f"stopped after {writer.jobs_started} live jobs, {writer.objects_written} writes")
