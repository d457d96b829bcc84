"""The command line dispatcher: where options may stand."""

from __future__ import annotations

import json

from perstack_tui.cli import main
from tests.conftest import COORDINATOR_JOB, ERROR_JOB, PROGRAMMATIC_JOB


def test_storage_options_may_stand_before_the_command(real_dir, capsys) -> None:
    assert main(["--storage", str(real_dir), "jobs", "--json"]) == 0
    ids = {job["id"] for job in json.loads(capsys.readouterr().out)}
    assert ids == {COORDINATOR_JOB, ERROR_JOB, PROGRAMMATIC_JOB}


def test_storage_options_may_stand_after_the_command(real_dir, capsys) -> None:
    assert main(["jobs", "--json", "--storage", str(real_dir)]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_an_unknown_word_is_not_mistaken_for_an_option_value(real_dir, capsys) -> None:
    assert main(["--storage", str(real_dir), "nonsense"]) == 2
    error = capsys.readouterr().err
    assert "unknown command 'nonsense'" in error and "log, jobs" in error


def test_a_missing_directory_is_named_as_missing_not_just_empty(tmp_path, capsys) -> None:
    missing = tmp_path / "nowhere" / "perstack"
    assert main(["jobs", "--storage", str(missing)]) == 1
    error = capsys.readouterr().err
    assert str(missing) in error and "does not exist" in error
    assert main(["log", "--storage", str(missing)]) == 1
    assert "does not exist" in capsys.readouterr().err
