"""``perstack-tui`` (no command) and ``perstack-tui open JOB[/RUN][#STEP]``: the TUI.

Textual is imported only when the app runs, so parsing a target stays headless.
"""

from __future__ import annotations

import argparse
import re
import sys

_TARGET = re.compile(r"^(?P<job>[^/#]+)(?:/(?P<run>[^/#]+))?(?:#(?P<step>\d+))?$")


def parse_target(text: str):  # type: ignore[no-untyped-def]
    """``JOB[/RUN][#STEP]`` as a :class:`~perstack_tui.tui.app.Target`; ``ValueError`` if bad
    (malformed, or an id such as ``..`` that would escape its folder)."""
    from perstack_tui import keys
    from perstack_tui.tui.app import Target

    match = _TARGET.match(text.strip())
    if match is None:
        raise ValueError(f"not JOB[/RUN][#STEP]: {text!r}")
    keys.check_id(match["job"], "job id")
    if match["run"] is not None:
        keys.check_id(match["run"], "run id")
    step = match["step"]
    return Target(match["job"], match["run"], int(step) if step is not None else None)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="JOB[/RUN][#STEP]", help="where to start")
    parser.add_argument(
        "--follow", action="store_true", help="pin the event list to the newest event"
    )
    add_app_arguments(parser)


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ansi",
        action="store_true",
        help="use the terminal's own palette (for terminals with few colours)",
    )
    parser.add_argument(
        "--export-dir",
        metavar="DIR",
        default="perstack-export",
        help="where `e` exports to (default: ./perstack-export)",
    )


def run(args: argparse.Namespace) -> int:
    from perstack_tui.storage.factory import open_storage
    from perstack_tui.tui.app import PerstackApp

    target = None
    if getattr(args, "target", None):
        try:
            target = parse_target(args.target)
        except ValueError as error:
            print(f"perstack-tui: {error}", file=sys.stderr)
            return 2
    storage, _resolved = open_storage(args)
    app = PerstackApp(
        storage,
        target=target,
        follow=bool(getattr(args, "follow", False)),
        ansi=bool(getattr(args, "ansi", False)),
        export_dir=getattr(args, "export_dir", "perstack-export"),
    )
    app.run()
    return 0
