"""The UI uses the engine through its public names only."""

from __future__ import annotations

import ast
from pathlib import Path

import perstack_tui.tui
from perstack_tui.catalog import run_status

TUI_DIR = Path(perstack_tui.tui.__file__).parent


def test_run_status_says_how_a_run_ended_from_its_last_event_type() -> None:
    assert run_status("completeRun") == "completed"
    assert run_status("stopRunByError") == "stoppedByError"
    assert run_status("stopRunByDelegate") == "stoppedByDelegate"
    assert run_status("callTools") == "running"
    assert run_status(None) == "running"


def test_the_ui_imports_no_private_name_of_the_engine() -> None:
    private: list[str] = []
    for path in TUI_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2 and node.module:
                # `from ...catalog import x` (the engine), not `from ..widgets import x`
                package_depth = len(path.relative_to(TUI_DIR).parts)
                if node.level < package_depth + 1:
                    continue
                private += [
                    f"{path.name}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_")
                ]
    assert private == []
