"""Live behaviour: new events, runs and jobs appear while the app is open."""

from __future__ import annotations

import json
from pathlib import Path

from perstack_tui import keys
from perstack_tui.storage.filesystem import FileSystemStorage
from perstack_tui.tui.app import Target
from perstack_tui.tui.screens import jobs as jobs_screen
from perstack_tui.tui.screens.job import JobScreen
from perstack_tui.tui.screens.jobs import JobsScreen
from tests.conftest import CLI_RUN, COORDINATOR_JOB

from .helpers import wait_for
from .test_app import make_app

LIVE_JOB = "livejob0000000000000000a1"
NEW_RUN = "continuedrun00000000000b2"
SOURCE_RUN = CLI_RUN / "jobs" / COORDINATOR_JOB / "runs" / "r3k7c4urwywzgewayor7pkse"
HELPER_RUN = CLI_RUN / "jobs" / COORDINATOR_JOB / "runs" / "hadyhjk3onqq4qi3j6ixtsng"


def event_like(kind: str, timestamp: int, step: int, job_id: str = LIVE_JOB) -> dict:
    """A real event of type ``kind`` from the fixtures, moved to ``job_id`` at ``timestamp``."""
    source = next(SOURCE_RUN.glob(f"event-*-{kind}.json"))
    event = json.loads(source.read_text())
    event.update(jobId=job_id, timestamp=timestamp, stepNumber=step, id=f"{kind}{timestamp}")
    for field in ("checkpoint", "initialCheckpoint", "nextCheckpoint"):
        if isinstance(event.get(field), dict):
            event[field]["jobId"] = job_id
    return event


async def write(storage: FileSystemStorage, *events: dict) -> None:
    for event in events:
        await storage.store_event(event)


async def test_following_pins_to_new_events_pauses_on_scroll_and_end_resumes(
    real_dir: Path,
) -> None:
    storage = FileSystemStorage(real_dir)
    t = 1795299400000
    await write(storage, event_like("startRun", t, 1))
    app = make_app(storage, target=Target(LIVE_JOB), follow=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(
            lambda: (
                isinstance(app.screen, JobScreen) and app.screen.all_rows_made and app.screen.rows
            ),
            pilot,
        )
        screen = app.screen
        await write(
            storage,
            event_like("streamReasoning", t + 10, 1),
            event_like("streamReasoning", t + 11, 1),
            event_like("callTools", t + 20, 1),
        )
        await wait_for(lambda: len(screen.rows) == 3, pilot)  # the two deltas fold into one row
        assert screen.rows[1].stream == "Reasoning" and len(screen.rows[1].metas) == 2
        assert screen.events_list.cursor == 2  # pinned to the newest
        await pilot.press("k")  # scrolling up pauses following
        await write(
            storage,
            event_like("resolveToolResults", t + 30, 1),
            event_like("continueToNextStep", t + 40, 1),
        )
        await wait_for(lambda: len(screen.rows) == 5, pilot)
        assert screen.events_list.cursor == 1
        pane = screen.query_one("#events-pane")
        assert str(pane.border_subtitle).startswith("+2 new")
        await pilot.press("end")
        assert screen.events_list.cursor == 4
        assert str(pane.border_subtitle).startswith("following")
        # the job's status follows the events: continueToNextStep leaves it running
        await wait_for(lambda: "running" in str(screen.query_one("StorageHeader").where), pilot)


async def test_a_job_started_after_opening_appears_in_the_jobs_list(real_dir: Path) -> None:
    storage = FileSystemStorage(real_dir)
    app = make_app(storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: isinstance(app.screen, JobsScreen) and app.screen.order, pilot)
        screen = app.screen
        await wait_for(lambda: not screen._pending, pilot)
        await write(storage, event_like("startRun", 1795299490000, 1))
        await wait_for(lambda: screen.order and screen.order[0] == LIVE_JOB, pilot, timeout=8)
        assert app.catalog.cached_job(LIVE_JOB).status == "running"


async def test_follow_without_target_opens_the_newest_running_job(real_dir: Path) -> None:
    storage = FileSystemStorage(real_dir)
    await write(storage, event_like("startRun", 1795299000000, 1))  # older, but running
    app = make_app(storage, follow=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(
            lambda: (
                isinstance(app.screen, JobScreen) and app.screen.all_rows_made and app.screen.rows
            ),
            pilot,
        )
        assert app.screen.job_id == LIVE_JOB
        assert app.screen.following


async def test_a_continued_runs_new_events_are_placed_by_the_folder_they_are_stored_in(
    real_dir: Path,
) -> None:
    """--continue-job writes into a new run folder events whose runId names the old run."""
    storage = FileSystemStorage(real_dir)
    t = 1795299400000
    first = event_like("startRun", t, 1)
    await write(storage, first)
    old_run = first["runId"]
    app = make_app(storage, target=Target(LIVE_JOB), follow=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(
            lambda: (
                isinstance(app.screen, JobScreen) and app.screen.all_rows_made and app.screen.rows
            ),
            pilot,
        )
        screen = app.screen
        continued = event_like("callTools", t + 50, 2)  # its runId is still the old run's
        key = keys.event_key(LIVE_JOB, NEW_RUN, t + 50, 2, "callTools")
        await storage.write_bytes(key, json.dumps(continued).encode())
        # the folder may be seen a poll before the file written into it
        await wait_for(lambda: any(r.run_id == NEW_RUN and r.events for r in screen.runs), pilot)
        new_run = next(r for r in screen.runs if r.run_id == NEW_RUN)
        old = next(r for r in screen.runs if r.run_id == old_run)
        assert [m.key for m in new_run.events] == [key]
        assert len(old.events) == 1
        assert screen.rows[-1].run_id == NEW_RUN and screen.rows[-1].key == key
        assert screen.events[key].type == "callTools"  # the body is found under its real key


async def test_a_running_job_scrolled_off_screen_shows_its_new_status_when_it_ends(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(jobs_screen, "RUNNING_ALL_INTERVAL", 0.3)
    storage = FileSystemStorage(tmp_path / "perstack")
    t = 1795299000000
    for i in range(60):  # finished jobs, newer than the running one: it sorts last
        job = {"id": f"done{i:02d}", "status": "completed", "coordinatorExpertKey": "x"}
        await storage.store_job({**job, "startedAt": t + 1000 * (i + 1), "totalSteps": 1})
    start = event_like("startRun", t, 1)
    await write(storage, start)
    app = make_app(storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: isinstance(app.screen, JobsScreen) and app.screen.order, pilot)
        screen = app.screen
        await wait_for(lambda: not screen._pending, pilot)
        assert screen.order[-1] == LIVE_JOB
        assert app.catalog.cached_job(LIVE_JOB).status == "running"
        _first, last = screen.list.visible_range
        assert screen.order.index(LIVE_JOB) >= last  # off screen
        end = json.loads(next(HELPER_RUN.glob("event-*-completeRun.json")).read_text())
        end.update(jobId=LIVE_JOB, runId=start["runId"], timestamp=t + 500, stepNumber=2)
        await write(storage, end)
        await wait_for(
            lambda: app.catalog.cached_job(LIVE_JOB).status == "completed", pilot, timeout=5
        )
        summary = app.catalog.cached_job(LIVE_JOB)
        assert summary.steps == 2 and summary.usage.totalTokens > 0
        assert "completed" in screen.render_row(screen.order.index(LIVE_JOB), 120).plain
