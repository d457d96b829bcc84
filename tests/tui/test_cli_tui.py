"""`perstack-tui open JOB[/RUN][#STEP]`: target parsing, flags, no Textual until the app runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from perstack_tui.cli import _tui_parser
from perstack_tui.cli.tui import parse_target
from perstack_tui.keys import UnsafeIdError
from perstack_tui.tui.app import Target


def test_open_target_parses_job_run_and_step() -> None:
    assert parse_target("job1/run2#7") == Target("job1", "run2", 7)
    assert parse_target("job1#3") == Target("job1", None, 3)
    assert parse_target("job1") == Target("job1")
    assert str(Target("job1", "run2", 7)) == "job1/run2#7"  # what `y` copies


@pytest.mark.parametrize("text", ["", "a/b/c", "job#x", "/run"])
def test_open_target_refuses_malformed_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_target(text)


def test_tui_flags_parse_without_a_command() -> None:
    args = _tui_parser().parse_args(["--ansi", "--follow", "--export-dir", "out"])
    assert args.ansi and args.follow and args.export_dir == "out" and args.command is None


def test_parsing_a_target_does_not_import_textual() -> None:
    code = (
        "import sys; from perstack_tui.cli import tui; "
        "tui.add_arguments(__import__('argparse').ArgumentParser()); "
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("text", ["..", "../etc", "job/..", ".#3"])
def test_open_target_refuses_ids_that_escape_their_folder(text: str) -> None:
    with pytest.raises(UnsafeIdError):
        parse_target(text)


def test_open_with_an_unsafe_job_id_is_a_one_line_usage_error(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "perstack_tui", "open", "../etc", "--storage", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == "perstack-tui: unsafe job id: '..'"
