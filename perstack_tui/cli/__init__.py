"""The command line: ``perstack-tui [COMMAND]``; no command opens the TUI.

Command modules are imported only when chosen, so ``log`` never pays for Textual.
Exit codes: 0 ok, 1 nothing matched, 2 usage or configuration error, 3 storage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

EXIT_OK, EXIT_NO_MATCH, EXIT_USAGE, EXIT_STORAGE = 0, 1, 2, 3

# name -> (module under perstack_tui.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "log": ("log", "print a job's events as text or JSON (Perstack's log, on every backend)"),
    "jobs": ("jobs", "list jobs as a table or JSON"),
    "show": ("show", "print one event, checkpoint, job or run setting as JSON"),
    "export": ("export", "copy a job's key tree to a local directory"),
    "info": ("info", "show the storage in use and where that setting came from"),
    "demo": ("demo", "write a demo storage (optionally keep a simulated job running)"),
    "open": ("tui", "open the TUI at JOB[/RUN][#STEP]"),
}


def add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    """--storage, --config and --debug: every command that reads a storage takes them."""
    group = parser.add_argument_group("storage")
    group.add_argument(
        "--storage",
        metavar="URI",
        help="storage to open: ./path, file:///abs, s3://bucket/prefix?region=..&endpoint=.., "
        "r2://account/bucket/prefix (overrides perstack.toml)",
    )
    group.add_argument(
        "--config", metavar="PATH", help="perstack.toml to read (default: found walking up)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perstack-tui",
        description="Browse and live-tail Perstack jobs, runs, events and checkpoints.",
    )
    add_storage_arguments(parser)
    parser.add_argument(
        "--follow", action="store_true", help="start the TUI following the newest event"
    )
    _module("tui").add_app_arguments(parser)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_storage_arguments(command)
        _module(module).add_arguments(command)
    return parser


def _version() -> str:
    from perstack_tui import __version__

    return f"perstack-tui {__version__}"


def _module(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"perstack_tui.cli.{name}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Parse only what is needed: a subcommand's parser imports only its module.
    position = _command_position(argv)
    command = argv[position] if position is not None else None
    if command in COMMANDS:
        # `perstack-tui --storage X jobs` means `perstack-tui jobs --storage X`.
        argv = [command, *argv[position + 1 :], *argv[:position]]
        parser = argparse.ArgumentParser(prog="perstack-tui")
        sub = parser.add_subparsers(dest="command")
        module = _module(COMMANDS[command][0])
        sub_parser = sub.add_parser(command, description=COMMANDS[command][1])
        add_storage_arguments(sub_parser)
        module.add_arguments(sub_parser)
    elif command is not None:
        choices = ", ".join(COMMANDS)
        print(f"perstack-tui: unknown command {command!r} (commands: {choices})", file=sys.stderr)
        return EXIT_USAGE
    else:
        module = None
        parser = build_parser() if "-h" in argv or "--help" in argv else _tui_parser()
    args = parser.parse_args(argv)
    if module is None:
        module = _module("tui")
    return run_guarded(module.run, args)


# Options that take a value, so the word after them is not the command.
_VALUE_OPTIONS = frozenset({"--storage", "--config", "--export-dir"})


def _command_position(argv: Sequence[str]) -> int | None:
    """Where the first word that is not an option (or an option's value) stands."""
    skip = False
    for position, word in enumerate(argv):
        if skip:
            skip = False
        elif word in _VALUE_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            return position
    return None


def _tui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perstack-tui")
    add_storage_arguments(parser)
    parser.add_argument("--follow", action="store_true")
    _module("tui").add_app_arguments(parser)  # --ansi, --export-dir
    parser.add_argument("--version", action="version", version=_version())
    parser.set_defaults(command=None, target=None)
    return parser


def run_guarded(run, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    """Run a command; configuration and storage errors become a message and an exit code."""
    from perstack_tui.config import ConfigError
    from perstack_tui.storage.base import StorageError

    try:
        return int(run(args) or 0)
    except ConfigError as error:
        if getattr(args, "debug", False):
            raise
        print(f"perstack-tui: configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StorageError as error:
        if getattr(args, "debug", False):
            raise
        print(f"perstack-tui: storage error: {error}", file=sys.stderr)
        return EXIT_STORAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
