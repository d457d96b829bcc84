"""The TUI against the real local S3 server: the real fixtures uploaded, a missing bucket."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from perstack_tui.models import Unreadable
from perstack_tui.storage.s3 import S3Storage
from perstack_tui.tui.screens.job import JobScreen
from perstack_tui.tui.screens.jobs import JobsScreen
from perstack_tui.tui.widgets.header import StorageHeader
from tests.conftest import COORDINATOR_JOB, CORRUPT_EVENT, PROGRAMMATIC_JOB
from tests.s3server import S3Server

from .helpers import row_texts, wait_for
from .test_app import jobs_loaded, make_app

pytestmark = pytest.mark.s3


async def upload(storage: S3Storage, root: Path) -> int:
    """Every file under ``root`` written through the storage API, under its relative key."""
    files = [path for path in sorted(root.rglob("*")) if path.is_file()]
    for path in files:
        await storage.write_bytes(path.relative_to(root).as_posix(), path.read_bytes())
    return len(files)


def header_text(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one(StorageHeader).render())


async def test_the_app_browses_the_real_fixtures_on_s3_and_marks_the_corrupt_event(
    s3_storage: S3Storage, real_dir: Path
) -> None:
    assert await upload(s3_storage, real_dir) > 10
    app = make_app(s3_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: jobs_loaded(app), pilot, timeout=15)
        assert f"s3://{s3_storage.bucket}/team/perstack/" in header_text(app)
        assert app.catalog.cached_job(PROGRAMMATIC_JOB).source == "job.json"
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)
        jobs.select_job(COORDINATOR_JOB)
        await pilot.press("enter")
        await wait_for(
            lambda: (
                isinstance(app.screen, JobScreen) and app.screen.all_rows_made and app.screen.rows
            ),
            pilot,
        )
        screen = app.screen
        types = [row.first.type for row in screen.rows]
        assert types[:3] == ["startRun", "streamReasoning", "callTools"]
        assert "completeRun" in types
        stream = next(i for i, row in enumerate(screen.rows) if CORRUPT_EVENT in row.key)
        screen.events_list.set_cursor(stream)
        await wait_for(lambda: CORRUPT_EVENT in screen.events, pilot, timeout=10)
        assert isinstance(screen.events[CORRUPT_EVENT], Unreadable)
        await wait_for(lambda: "unreadable" in row_texts(screen.events_list)[stream], pilot)
        assert "● ok" in header_text(app)


async def test_a_missing_bucket_shows_in_the_header_and_r_recovers_once_it_exists(
    s3_server: S3Server, real_dir: Path
) -> None:
    bucket = f"perstack-missing-{uuid.uuid4().hex[:12]}"
    storage = S3Storage(
        bucket,
        "team/perstack",
        region="us-east-1",
        endpoint=s3_server.endpoint,
        force_path_style=True,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
    )
    app = make_app(storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: app.storage_state == "error", pilot, timeout=15)
        assert "✖ error" in header_text(app)
        assert f"bucket {bucket!r} does not exist" in header_text(app)
        jobs = app.screen
        assert isinstance(jobs, JobsScreen) and not jobs.order
        s3_server.make_bucket(bucket)
        await upload(storage, real_dir)
        await pilot.press("R")
        await wait_for(lambda: jobs_loaded(app), pilot, timeout=15)
        await wait_for(lambda: app.storage_state == "ok", pilot)
        assert "● ok" in header_text(app)
