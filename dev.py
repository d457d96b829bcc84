#!/usr/bin/env python3
"""Set up and run: ``python3 dev.py run`` opens the TUI, ``python3 dev.py test`` runs every check.

Needs only Python 3.11+ and git: it creates ``.venv`` when missing and installs the
project with its development dependencies (including the local S3 server for tests).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def ensure_venv() -> None:
    """Create .venv and (re)install when pyproject.toml changed since the last install."""
    if not PY.exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("dev.py: installing perstack-tui and its dev dependencies", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    stamp.write_text(digest)


def run(*command: str) -> int:
    return subprocess.run(list(command), cwd=ROOT).returncode


def cmd_run(args: list[str]) -> int:
    ensure_venv()
    if "--storage" in args or (Path.cwd() / "perstack").is_dir():
        return run(str(PY), "-m", "perstack_tui", *args)
    # No ./perstack: open a demo storage with a simulated job running live beside the app.
    demo = ROOT / ".demo" / "perstack"
    if not demo.is_dir():
        subprocess.run([str(PY), "-m", "perstack_tui", "demo", "--path", str(demo)], check=True)
    jobs = demo / "jobs"
    before = set(os.listdir(jobs))
    writer = subprocess.Popen(
        [str(PY), "-m", "perstack_tui", "demo", "--path", str(demo), "--live", "--quiet"],
        cwd=ROOT,
    )
    # Open the app once the live job exists, so --follow picks it (not an older running one).
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and writer.poll() is None:
        if set(os.listdir(jobs)) - before:
            break
        time.sleep(0.1)
    try:
        return run(str(PY), "-m", "perstack_tui", "--storage", str(demo), "--follow", *args)
    finally:
        writer.terminate()
        writer.wait()


def cmd_test(args: list[str]) -> int:
    ensure_venv()
    for check in (
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "."],
    ):
        print("dev.py:", " ".join(check[1:]).join(["ruff ", ""]), flush=True)
        if code := run(*check):
            return code
    return run(str(PY), "-m", "pytest", *args)


def cmd_bench(args: list[str]) -> int:
    ensure_venv()
    return run(str(PY), "-m", "bench", *args)


def cmd_screenshots(args: list[str]) -> int:
    ensure_venv()
    return run(str(PY), "scripts/screenshots.py", *args)


COMMANDS = {"run": cmd_run, "test": cmd_test, "bench": cmd_bench, "screenshots": cmd_screenshots}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(f"usage: python3 dev.py {{{'|'.join(COMMANDS)}}} [args...]", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(COMMANDS[sys.argv[1]](sys.argv[2:]))
