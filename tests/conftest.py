"""Shared fixtures: the real Perstack data copied into tests/fixtures, as storages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from perstack_tui.storage.filesystem import FileSystemStorage

# the local S3-compatible server and S3/R2 storages on it (session server, fresh bucket each)
from .s3server import r2_storage, s3_bucket, s3_server, s3_storage  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures" / "perstack-real"
CLI_RUN = FIXTURES / "cli-local-run" / "perstack"
PROGRAMMATIC = FIXTURES / "programmatic-filesystem-storage" / "perstack"

COORDINATOR_JOB = "gs6rtt7sestu2uxrkhxgshqm"
ERROR_JOB = "qurgxsjzp9ki8b20twqb3kbq"
PROGRAMMATIC_JOB = "pu2was0sfh6bglx0hqowvvdy"
CORRUPT_EVENT = (
    "jobs/gs6rtt7sestu2uxrkhxgshqm/runs/hadyhjk3onqq4qi3j6ixtsng/"
    "event-1795299383378-4-streamRunResult.json"
)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own cache directory (the persistent job index): never the user's."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("PERSTACK_TUI_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def real_dir(tmp_path: Path) -> Path:
    """Both real storages merged into one writable copy (tests never touch the originals)."""
    target = tmp_path / "perstack"
    shutil.copytree(CLI_RUN, target)
    shutil.copytree(PROGRAMMATIC / "jobs", target / "jobs", dirs_exist_ok=True)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


@pytest.fixture
def real_storage(real_dir: Path) -> FileSystemStorage:
    return FileSystemStorage(real_dir)
