"""``perstack-tui log``: a job's events as text, JSON or JSONL, with Perstack's log flags.

Defaults as Perstack's log: the latest job (by start time here, not directory mtime), every
event of every run by timestamp (runs Perstack misses included), 100 events. Only the
events shown are read, unless a filter needs bodies (``--filter``, ``--errors``).
"""

from __future__ import annotations

import argparse
from typing import Any

EXIT_OK, EXIT_NO_MATCH, EXIT_USAGE = 0, 1, 2
DEFAULT_TAKE = 100


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_argument_group("what to show")
    which.add_argument("--job", metavar="ID", help="the job (default: the latest by start time)")
    which.add_argument("--run", metavar="ID", help="only this run's events")
    which.add_argument(
        "--checkpoint", metavar="ID", help="this checkpoint, and the events of its run"
    )
    filters = parser.add_argument_group("filters (all given must pass)")
    filters.add_argument("--step", metavar="RANGE", help="steps: 5, >5, >=5, <5, <=5 or 1-10")
    filters.add_argument("--type", metavar="TYPE[,TYPE]", help="event types, e.g. callTools")
    filters.add_argument(
        "--errors", action="store_true", help="errors: stopRunByError, retry, tool errors"
    )
    filters.add_argument(
        "--tools",
        action="store_true",
        help="tool events: callTools, resolveToolResults, callInteractiveTool",
    )
    filters.add_argument(
        "--delegations",
        action="store_true",
        help="delegation events: callDelegate, stopRunByDelegate",
    )
    filters.add_argument(
        "--filter",
        metavar="EXPR",
        help="'.a.b[].c OP value', OP one of == != > >= < <= (an array matches if any does)",
    )
    page = parser.add_argument_group("paging")
    page.add_argument(
        "--take",
        type=_count,
        default=DEFAULT_TAKE,
        metavar="N",
        help=f"show at most N matching events (default {DEFAULT_TAKE}, 0 = all)",
    )
    page.add_argument(
        "--offset", type=_count, default=0, metavar="N", help="skip the first N matches"
    )
    page.add_argument(
        "--context", type=_count, default=0, metavar="N", help="also show N events around each"
    )
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="JSON {job, events, summary}")
    output.add_argument("--jsonl", action="store_true", help="one event per line, as JSON")
    output.add_argument("--pretty", action="store_true", help="indent the JSON")
    output.add_argument("--verbose", action="store_true", help="full texts and tool arguments")
    output.add_argument(
        "--messages",
        action="store_true",
        help="the message history of --checkpoint (or of the job's latest checkpoint)",
    )
    output.add_argument(
        "--summary", action="store_true", help="the header and summary of all matches only"
    )
    output.add_argument(
        "--follow",
        action="store_true",
        help="keep printing new events as they are written, until the job ends (or Ctrl-C)",
    )
    output.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with --follow: how often to poll S3/R2 (default 1; a local directory is watched)",
    )
    output.add_argument(
        "--reveal-secrets", action="store_true", help="do not mask secrets in JSON output"
    )


def run(args: argparse.Namespace) -> int:
    from . import _log  # the engine (pydantic models) only once the command runs

    return _log.run(args)


def __getattr__(name: str) -> Any:
    """The command's engine side (``log_command``, ``select_events``...) loads on first
    use: ``log --help`` imports argparse only."""
    from . import _log

    try:
        return getattr(_log, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
