"""Pilot tests: detail views, checkpoints from the event list, narrow layout, 10k jobs."""

from __future__ import annotations

import json
import time

from perstack_tui import keys
from perstack_tui.catalog import CheckpointRef
from perstack_tui.storage.memory import MemoryStorage
from perstack_tui.tui.screens.checkpoint import CheckpointScreen
from perstack_tui.tui.screens.jobs import JobsScreen
from perstack_tui.tui.widgets.header import StorageHeader
from tests.conftest import COORDINATOR_JOB

from .helpers import wait_for
from .test_app import COORDINATOR_RUN, make_app, open_coordinator_job

STEP_1_CHECKPOINT_EVENT = keys.event_key(
    COORDINATOR_JOB, COORDINATOR_RUN, 1795299383126, 1, "continueToNextStep"
)


async def test_enter_opens_the_readable_detail_and_r_switches_to_raw(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        index = [r.first.type for r in screen.rows].index("resolveToolResults")
        screen.events_list.set_cursor(index)
        await pilot.press("enter")
        detail = screen.detail
        assert detail.mode == "readable"
        await pilot.press("r")
        assert detail.mode == "raw"
        await pilot.press("r")
        assert detail.mode == "readable"
        await pilot.press("escape")
        assert screen.events_list.has_focus


async def test_c_opens_the_steps_checkpoint_and_e_returns_to_its_events(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        await pilot.press("G")  # the helper's completeRun, step 4
        screen.events_list.set_cursor(1)  # step 1 of the coordinator
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, CheckpointScreen), pilot)
        checkpoint_screen = app.screen
        await wait_for(lambda: checkpoint_screen.current is not None, pilot)
        assert checkpoint_screen.current.step == 1
        await pilot.press("e")
        await wait_for(lambda: app.screen is screen, pilot)
        assert screen.current_row.step == 1 and screen.current_row.run_id == COORDINATOR_RUN


async def test_c_hands_the_checkpoint_screen_the_ref_of_the_rows_step(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        index = [r.first.type for r in screen.rows].index("callTools")  # step 1
        screen.events_list.set_cursor(index)
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, CheckpointScreen), pilot)
        checkpoint_screen = app.screen
        # the carrying event's ref and the job's refs: the screen has nothing to search
        assert isinstance(checkpoint_screen.target, CheckpointRef)
        assert checkpoint_screen.target.key == STEP_1_CHECKPOINT_EVENT
        assert checkpoint_screen.given_refs == await app.catalog.checkpoint_refs(COORDINATOR_JOB)


async def test_square_brackets_move_between_checkpoint_events(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        await pilot.press("g", "right_square_bracket")
        assert screen.current_row.first.type == "continueToNextStep"
        await pilot.press("right_square_bracket")
        assert screen.current_row.first.type == "completeRun"
        await pilot.press("left_square_bracket")
        assert screen.current_row.first.type == "continueToNextStep"


async def test_at_80x24_the_panes_stack(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        assert screen.has_class("narrow")
        runs = screen.query_one("#runs-pane").region
        events = screen.query_one("#events-pane").region
        assert runs.bottom <= events.y and events.width == 80


def many_jobs_storage(count: int) -> MemoryStorage:
    """``count`` small jobs (one startRun event each), written straight into memory."""
    storage = MemoryStorage()
    for index in range(count):
        job_id = f"job{index:06d}"
        timestamp = 1795200000000 + index * 1000
        event = {
            "type": "completeRun",
            "id": f"e{index}",
            "expertKey": "bulk",
            "timestamp": timestamp,
            "jobId": job_id,
            "runId": "run",
            "stepNumber": 1,
            "text": "done",
            "checkpoint": {
                "id": f"c{index}",
                "jobId": job_id,
                "runId": "run",
                "status": "completed",
                "stepNumber": 1,
            },
        }
        key = f"jobs/{job_id}/runs/run/event-{timestamp}-1-completeRun.json"
        storage.objects[key] = (json.dumps(event).encode(), 0.0)
    return storage


async def test_ten_thousand_jobs_show_at_once_and_fill_in_visible_rows_first() -> None:
    storage = many_jobs_storage(10_000)
    app = make_app(storage)
    async with app.run_test(size=(120, 36)) as pilot:
        started = time.monotonic()
        await wait_for(lambda: isinstance(app.screen, JobsScreen) and app.screen.order, pilot)
        screen = app.screen
        first, last = screen.list.visible_range
        await wait_for(
            lambda: all(
                (s := app.catalog.cached_job(j)) and not s.partial for j in screen.order[first:last]
            ),
            pilot,
        )
        # one listing put them newest first before any detail was read
        assert screen.order[:2] == ["job009999", "job009998"]
        # a generous bound: the machine may be busy; the order of fetching is what matters
        assert time.monotonic() - started < 5.0
        assert len(screen.order) == 10_000
        # the rows on screen came first: most details are still being fetched
        assert len(screen._pending) > 9_000, len(screen._pending)


async def test_the_checkpoint_screen_header_shows_the_storage_and_its_failures(
    real_dir, real_storage
) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        screen.jump_to_step(1, COORDINATOR_RUN)
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, CheckpointScreen), pilot)
        header = app.screen.query_one(StorageHeader)
        await wait_for(lambda: app.screen.checkpoint is not None, pilot)
        text = str(header.line(1000))  # (at 120 columns the location is cut in the middle)
        assert f"filesystem:{real_dir}" in text and "● ok" in text
        assert f"job {COORDINATOR_JOB}" in text
        # the step's event vanishes: reading it fails, the header says so
        (real_dir / STEP_1_CHECKPOINT_EVENT).unlink()
        await app.pop_screen()
        screen.jump_to_step(1, COORDINATOR_RUN)
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, CheckpointScreen), pilot)
        header = app.screen.query_one(StorageHeader)
        await wait_for(lambda: "✖ error" in str(header.render()), pilot)
        assert app.is_running
