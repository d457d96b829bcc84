"""The markdown report: machine, date, data sizes, one table row per figure."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runner import Row, Settings

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- bench:latest:start -->", "<!-- bench:latest:end -->"


def machine() -> str:
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()
    return f"`{uname}`, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def table(rows: list[Row]) -> str:
    from .runner import fmt

    lines = [
        "| Figure | Data | Value | Floor | Ratio | Target | Result | Notes |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
        result = {True: "met", False: "**MISSED**", None: ""}[row.met]
        cells = [row.figure, row.data, fmt(row.value, row.unit), fmt(row.floor, row.unit),
                 ratio, row.target, result, row.note.replace("|", "\\|")]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def body(rows: list[Row], notes: list[str], settings: Settings, elapsed: float) -> str:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    sizes = (
        f"jobs sets: {', '.join(f'{n:,}' for n in settings.job_sizes)} jobs; one run of "
        f"{settings.run_events:,} events; a {settings.checkpoint_mb:g} MB checkpoint; tail "
        f"polls at {', '.join(f'{n:,}' for n in settings.tail_sizes)} existing events; "
        f"{settings.tail_events:,} events tailed"
    )
    parts = [
        f"- Date: {now}",
        f"- Machine: {machine()}",
        f"- Data: {sizes}",
        f"- Each figure: median of {settings.repeat} runs (cold start: {settings.cold_repeat}),"
        f" value and floor alternating, in fresh processes; total {elapsed / 60:.1f} min",
        "",
        table(rows),
    ]
    if notes:
        parts += ["", "Notes from this run:", "", *(f"- {n}" for n in notes)]
    return "\n".join(parts) + "\n"


def write(
    rows: list[Row],
    notes: list[str],
    settings: Settings,
    elapsed: float,
    out_dir: str | os.PathLike[str] | None,
    update_benchmarks: bool,
) -> Path:
    """Write ``report-<date>.md``; put the same table between the markers of BENCHMARKS.md."""
    text = body(rows, notes, settings, elapsed)
    folder = Path(out_dir) if out_dir else ROOT / "bench" / "out"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    path = folder / f"report-{stamp}{'-quick' if settings.is_quick else ''}.md"
    path.write_text(f"# perstack-tui benchmarks ({stamp})\n\n{text}")
    if update_benchmarks:
        benchmarks = ROOT / "BENCHMARKS.md"
        current = benchmarks.read_text() if benchmarks.exists() else f"{START}\n{END}\n"
        if START in current and END in current:
            head, rest = current.split(START, 1)
            tail = rest.split(END, 1)[1]
            benchmarks.write_text(f"{head}{START}\n{text}{END}{tail}")
    return path
