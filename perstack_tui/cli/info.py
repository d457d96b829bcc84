"""``perstack-tui info``: the storage in use, where that setting came from, and its job count."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the information as JSON")


def run(args: argparse.Namespace) -> int:
    report = asyncio.run(gather_info(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_text(report))
    for note in report["notes"]:
        print(f"perstack-tui: note: {note}", file=sys.stderr)
    return 0


async def gather_info(args: argparse.Namespace) -> dict[str, Any]:
    """What ``info`` reports, as a JSON-ready dict (one delimiter listing for the job count)."""
    from ..index import JobIndex
    from ..storage.factory import open_storage  # the engine only once the command runs

    storage, resolved = open_storage(args)
    try:
        info = storage.storage_info()
        job_count = len(await storage.list_job_ids())
    finally:
        await storage.close()
    index = JobIndex.for_location(info.location)
    notes = [index.problem] if index.problem else []
    config = resolved.config
    if config.type == "filesystem" and config.path and not Path(config.path).is_dir():
        notes.append(f"{config.path} does not exist yet (Perstack creates it on its first run)")
    return {
        "type": info.type,
        "location": info.location,
        "source": resolved.source,
        "sourceDescription": resolved.describe_source(),
        "configFile": str(resolved.config_file) if resolved.config_file else None,
        "jobs": job_count,
        "index": {"path": str(index.path) if index.path else None, "jobs": len(index)},
        "warnings": list(resolved.warnings),
        "notes": notes,
    }


def render_text(report: dict[str, Any]) -> str:
    """The report as aligned ``name  value`` lines."""
    lines = [
        ("storage", report["location"]),
        ("type", report["type"]),
        ("from", report["sourceDescription"]),
    ]
    if report["configFile"] and report["source"] != "file":
        lines.append(("config", f"{report['configFile']} (no [storage] section)"))
    lines.append(("jobs", str(report["jobs"])))
    index = report["index"]
    where = index["path"] or "off (PERSTACK_TUI_CACHE_DIR)"
    lines.append(("index", f"{where} ({index['jobs']} jobs known)"))
    return "\n".join(f"{name:<8} {value}" for name, value in lines)
