"""The engine and the headless commands never load Textual (nor rich's live display)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import COORDINATOR_JOB

ENGINE_MODULES = [
    "perstack_tui.models",
    "perstack_tui.keys",
    "perstack_tui.config",
    "perstack_tui.catalog",
    "perstack_tui.index",
    "perstack_tui.describe",
    "perstack_tui.filters",
    "perstack_tui.export",
    "perstack_tui.follow",
    "perstack_tui.storage.base",
    "perstack_tui.storage.factory",
    "perstack_tui.storage.filesystem",
    "perstack_tui.storage.memory",
    "perstack_tui.storage.tree",
    "perstack_tui.cli",
    "perstack_tui.cli.log",
    "perstack_tui.cli.jobs",
    "perstack_tui.cli.show",
    "perstack_tui.cli.export",
]
HEAVY = ("textual", "rich.live", "boto3", "botocore")

SCRIPT = """
import contextlib, importlib, io, json, sys
for name in {modules!r}:
    importlib.import_module(name)
from perstack_tui.cli import main
codes = []
for argv in {commands!r}:
    with contextlib.redirect_stdout(io.StringIO()):
        codes.append(main(argv))
roots = {{"textual", "rich", "boto3", "botocore"}}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in roots)
print(json.dumps({{"codes": codes, "loaded": loaded}}))
"""


def test_engine_and_commands_import_no_textual_rich_live_or_boto3(real_dir: Path):
    storage = str(real_dir)
    commands = [
        ["log", "--storage", storage, "--job", COORDINATOR_JOB],
        ["log", "--storage", storage, "--job", COORDINATOR_JOB, "--json", "--errors"],
        ["jobs", "--storage", storage],
        ["show", "--storage", storage, COORDINATOR_JOB],
        ["export", "--storage", storage, COORDINATOR_JOB, "-o", str(real_dir.parent / "out")],
    ]
    script = SCRIPT.format(modules=ENGINE_MODULES, commands=commands)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 0, 0, 0, 0]
    heavy = [m for m in report["loaded"] if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == [], f"headless code loaded {heavy}"
