"""The markdown report: machine, date, data sizes, one table row per figure."""

from __future__ import annotations

import datetime
import os
import platform
import re
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
        f"- Each figure: median of {settings.repeat} runs (cold start: {settings.cold_repeat};"
        f" open run: {settings.open_run_repeats()}, the app's on a disk"
        f" {settings.open_run_repeats(app_on_disk=True)}"
        f", see its notes), value and floor alternating, in fresh processes; total"
        f" {elapsed / 60:.1f} min",
        "",
        table(rows),
    ]
    if notes:
        parts += ["", "Notes from this run:", "", *(f"- {n}" for n in notes)]
    return "\n".join(parts) + "\n"


_DATE = re.compile(r"^- Date: (.+?)(?: \(this run: (.+)\))?$")
_KEPT = re.compile(r"^- Rows kept from an earlier run: (.+) \(measured (.+)\)$")


def _is_row(line: str) -> bool:
    return line.startswith("| ") and not line.startswith(("| Figure |", "|---"))


def _figure(line: str) -> str | None:
    from .runner import figure_of

    return figure_of(line.split("|")[1].strip())


def _dates(block: str) -> dict[str | None, str]:
    """When each figure's rows of a block were measured (by its Date and kept lines)."""
    dates: dict[str | None, str] = {}
    for line in block.splitlines():
        if match := _DATE.match(line):
            date, only = match.groups()
            figures = only.split(", ") if only else [_figure(r) for r in block.splitlines()
                                                      if _is_row(r)]  # fmt: skip
            dates.update({f: date for f in figures if f not in dates})
        elif match := _KEPT.match(line):
            dates.update({f: match.group(2) for f in match.group(1).split(", ")})
    return dates


def merge(previous: str, text: str, measured: list[str]) -> str:
    """This run's block (``text``), with the rows of the figures it did not measure kept
    from ``previous`` (the block it replaces) and a line saying when those were measured:
    an ``--only`` run updates its own rows and loses nobody else's."""
    from .runner import FIGURES

    kept = [r for r in previous.splitlines() if _is_row(r) and _figure(r) not in measured]
    if not kept:
        return text
    lines = text.splitlines()
    new_rows = [r for r in lines if _is_row(r)]
    table: list[str] = []
    for figure in sorted(FIGURES):
        source = new_rows if figure in measured else kept
        table += [r for r in source if _figure(r) == figure]
    table += [r for r in new_rows + kept if _figure(r) is None]  # unrecognised: never dropped
    dates = _dates(previous)
    by_date: dict[str, list[str]] = {}
    for figure in dict.fromkeys(_figure(r) for r in kept):
        by_date.setdefault(dates.get(figure, "at an unknown date"), []).append(
            figure or "other rows"
        )
    out: list[str] = []
    for line in lines:
        if _is_row(line):
            continue
        if line.startswith("|---"):
            out += [line, *table]
            continue
        if line.startswith("- Date: "):
            out.append(f"{line} (this run: {', '.join(measured)})")
            out += [f"- Rows kept from an earlier run: {', '.join(figures)} (measured {date})"
                    for date, figures in by_date.items()]  # fmt: skip
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def write(
    rows: list[Row],
    notes: list[str],
    settings: Settings,
    elapsed: float,
    out_dir: str | os.PathLike[str] | None,
    update_benchmarks: bool,
    measured: list[str] | None = None,
) -> Path:
    """Write ``report-<date>.md``; put the same table between the markers of BENCHMARKS.md,
    keeping there the rows of figures this run did not measure (``measured``: those it did;
    ``None``: all of them)."""
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
            previous, tail = rest.split(END, 1)
            if measured is not None:
                text = merge(previous, text, measured)
            benchmarks.write_text(f"{head}{START}\n{text}{END}{tail}")
    return path
