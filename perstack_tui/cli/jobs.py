"""``perstack-tui jobs``: the job list (id, status, expert, started, duration, steps, tokens)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # the engine is imported where used: ``jobs --help`` loads no models
    from ..catalog import JobSummary
    from ..storage.base import KeyValueStorage

EXIT_OK, EXIT_NO_MATCH = 0, 1
COLUMNS = ("ID", "STATUS", "EXPERT", "STARTED", "DURATION", "STEPS", "TOKENS")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="a JSON array of jobs (Job shape)")
    parser.add_argument("--pretty", action="store_true", help="indent the JSON")
    parser.add_argument("--status", metavar="STATUS[,STATUS]", help="only jobs with these statuses")
    parser.add_argument(
        "--limit", type=int, default=0, metavar="N", help="only the N newest jobs (0 = all)"
    )


def run(args: argparse.Namespace) -> int:
    from ..storage.factory import open_storage

    storage, _ = open_storage(args)
    return asyncio.run(_run_and_close(storage, args))


async def _run_and_close(storage: KeyValueStorage, args: argparse.Namespace) -> int:
    try:
        return await jobs_command(storage, args)
    finally:
        await storage.close()


async def list_jobs(
    storage: KeyValueStorage, *, statuses: set[str] | None = None, limit: int = 0
) -> list[JobSummary]:
    """Every job's summary, newest first (by start time), optionally filtered and cut.

    One recursive listing orders and filters every job; only the jobs printed are read
    for their expert and usage, and only where the job index (:mod:`perstack_tui.index`)
    has no summary for exactly the files listed.
    """
    from ..catalog import Catalog
    from ..index import JobIndex

    index = JobIndex.for_location(storage.storage_info().location)
    if index.problem:  # a cache: the jobs are right, only slower to get
        print(f"perstack-tui: note: {index.problem}", file=sys.stderr)
    catalog = Catalog(storage, index)
    summaries = await catalog.scan_jobs()
    if statuses:
        summaries = [s for s in summaries if s.status in statuses]
    if limit > 0:
        summaries = summaries[:limit]
    complete = await catalog.jobs([s.id for s in summaries])
    await catalog.save_index()
    if index.problem:  # not written: the next run is as slow as this one
        print(f"perstack-tui: note: {index.problem}", file=sys.stderr)
    return complete


def jobs_json(summaries: list[JobSummary]) -> list[dict[str, Any]]:
    from ..describe import job_json

    rows = []
    for summary in summaries:
        row = job_json(summary)
        if summary.duration_ms is not None:
            row["durationMs"] = summary.duration_ms
        if summary.problem:
            row["problem"] = summary.problem
        rows.append(row)
    return rows


def jobs_table(summaries: list[JobSummary]) -> str:
    """Aligned columns, as ``kubectl get`` prints them."""
    from ..describe import format_duration, format_timestamp, format_tokens

    rows = [COLUMNS] + [
        (
            s.id,
            s.status,
            s.expert or "-",
            format_timestamp(s.started_at),
            format_duration(s.duration_ms) if s.status != "running" else "running",
            str(s.steps),
            format_tokens(s.usage.totalTokens),
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    right = {"STEPS", "TOKENS", "DURATION"}
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if COLUMNS[i] in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


async def jobs_command(
    storage: KeyValueStorage, args: argparse.Namespace, out: TextIO | None = None
) -> int:
    """``jobs`` on an open storage; returns the exit code (1 when no job matched)."""
    out = out or sys.stdout
    statuses = {s.strip() for s in args.status.split(",") if s.strip()} if args.status else None
    summaries = await list_jobs(storage, statuses=statuses, limit=args.limit)
    if args.json:
        print(json.dumps(jobs_json(summaries), indent=2 if args.pretty else None), file=out)
    elif summaries:
        print(jobs_table(summaries), file=out)
    elif statuses:
        where = storage.storage_info().location
        print(f"perstack-tui: no jobs with that status in {where}", file=sys.stderr)
    else:
        print(f"perstack-tui: {storage.no_jobs_message()}", file=sys.stderr)
    return EXIT_OK if summaries else EXIT_NO_MATCH
