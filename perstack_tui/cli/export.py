"""``perstack-tui export JOB --output-dir DIR``: copy a job's key tree out of any backend.

``DIR`` becomes a filesystem storage base (``DIR/jobs/JOB/...``), so ``perstack-tui log
--storage DIR`` reads the export back. Run-setting secrets are masked unless
``--reveal-secrets``; a progress bar is drawn when stdout is a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # the engine is imported where used: ``export --help`` loads no models
    from ..storage.base import KeyValueStorage

EXIT_OK, EXIT_NO_MATCH, EXIT_USAGE = 0, 1, 2
BAR_WIDTH = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jobs", nargs="+", metavar="JOB", help="the job id(s) to export")
    parser.add_argument(
        "--output-dir", "-o", required=True, metavar="DIR", help="where to write (created)"
    )
    parser.add_argument(
        "--reveal-secrets",
        action="store_true",
        help="copy run settings as stored (env, apiKey... unmasked)",
    )


def run(args: argparse.Namespace) -> int:
    from ..storage.factory import open_storage

    storage, _ = open_storage(args)
    return asyncio.run(_run_and_close(storage, args))


async def _run_and_close(storage: KeyValueStorage, args: argparse.Namespace) -> int:
    try:
        return await export_command(storage, args)
    finally:
        await storage.close()


class ProgressBar:
    """A one-line ``[#####.....] 12/40 files`` bar redrawn in place (only on a terminal)."""

    def __init__(self, out: TextIO, label: str) -> None:
        self.out = out
        self.label = label
        self.enabled = out.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        filled = BAR_WIDTH * done // max(total, 1)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.out.write(f"\r{self.label} [{bar}] {done}/{total} files")
        self.out.flush()

    def finish(self) -> None:
        if self.enabled:
            self.out.write("\r\033[K")
            self.out.flush()


async def export_command(
    storage: KeyValueStorage, args: argparse.Namespace, out: TextIO | None = None
) -> int:
    """``export`` on an open storage; returns the exit code."""
    from ..export import UnsafeKeyError, export_job
    from ..storage.base import NotFoundError

    out = out or sys.stdout
    out_dir = Path(args.output_dir)
    code = EXIT_OK

    def skipped(key: str, reason: str) -> None:
        print(f"perstack-tui: skipped {key}: {reason}", file=sys.stderr)

    for job_id in args.jobs:
        bar = ProgressBar(out, job_id)
        try:
            written = await export_job(
                storage,
                job_id,
                out_dir,
                reveal_secrets=args.reveal_secrets,
                progress=bar,
                on_skip=skipped,
            )
        except UnsafeKeyError as error:
            bar.finish()
            print(f"perstack-tui: {error}", file=sys.stderr)
            return EXIT_USAGE
        except NotFoundError as error:
            bar.finish()
            print(f"perstack-tui: {error}", file=sys.stderr)
            code = EXIT_NO_MATCH
            continue
        bar.finish()
        masked = "" if args.reveal_secrets else " (run-setting secrets masked)"
        print(f"exported {len(written)} files of job {job_id} to {out_dir}{masked}", file=out)
    return code
