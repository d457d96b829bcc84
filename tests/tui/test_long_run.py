"""A long job's rows: a screen's first, the rest once that screen shows; the same rows as
made at once, and whatever needs them all (a jump, the newest row) gets them all."""

from __future__ import annotations

import asyncio
import gc
from functools import partial

import pytest

from perstack_tui.demo import build_job, delegation_job, long_job, write_job
from perstack_tui.storage.memory import MemoryStorage
from perstack_tui.tui.app import PerstackApp
from perstack_tui.tui.screens import job as job_screen
from perstack_tui.tui.screens.job import JobScreen

from .helpers import wait_for

ANCHOR = 1795300000000


async def storage_with(scenario) -> tuple[MemoryStorage, str]:  # type: ignore[no-untyped-def]
    storage = MemoryStorage()
    job = build_job(scenario, seed=7, start_ms=ANCHOR)
    await write_job(storage, job)
    return storage, job.job_id


async def two_runs_at_once() -> tuple[MemoryStorage, str]:
    """One job of two runs written at the same time: their events interleave."""
    storage, job_id = await storage_with(partial(long_job, steps=40))
    other = build_job(partial(long_job, steps=40), seed=8, start_ms=ANCHOR + 7)
    for item in other.objects:
        if "/runs/" in item.key:
            run_key = item.key.replace(f"jobs/{other.job_id}/", f"jobs/{job_id}/")
            await storage.write_bytes(run_key, item.data)
    return storage, job_id


def rows_of(screen: JobScreen) -> list[tuple[str, str | None, list[str]]]:
    return [(r.run_id, r.stream, [m.key for m in r.metas]) for r in screen.rows]


async def open_job(app: PerstackApp, pilot, job_id: str) -> JobScreen:  # type: ignore[no-untyped-def]
    app.open_job(job_id)
    await wait_for(lambda: isinstance(app.screen, JobScreen) and app.screen.rows, pilot)
    return app.screen  # type: ignore[return-value]


def all_made(screen: JobScreen) -> bool:
    return screen.events_list.row_count == len(screen.rows) and "…" not in str(
        screen.query_one("#events-pane").border_title
    )


async def made_at_once(screen: JobScreen, pilot) -> list[tuple[str, str | None, list[str]]]:  # type: ignore[no-untyped-def]
    """The rows made in one go (clearing the filters keeps the cursor on its row)."""
    await pilot.press("x")
    await wait_for(lambda: all_made(screen), pilot)
    return rows_of(screen)


@pytest.mark.parametrize(
    "written",
    [
        partial(storage_with, partial(long_job, steps=150)),
        partial(storage_with, delegation_job),
        two_runs_at_once,
    ],
    ids=["long", "delegation", "two-runs-at-once"],
)
async def test_a_jobs_rows_made_a_screen_first_are_the_rows_made_at_once(
    written, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every event in one row, each row where its first event falls in time across runs,
    folded as when all rows are made at once."""
    monkeypatch.setattr(job_screen, "_FIRST_ROWS", 3)  # the delegation job's few rows too
    slices = []
    take_rows = JobScreen._take_rows

    def spy(self, rows=None, events=None):  # type: ignore[no-untyped-def]
        slices.append(events)
        take_rows(self, rows, events)

    monkeypatch.setattr(JobScreen, "_take_rows", spy)
    storage, job_id = await written()
    app = PerstackApp(storage)
    async with app.run_test(size=(120, 16)) as pilot:  # a few rows a screen
        screen = await open_job(app, pilot, job_id)
        await wait_for(lambda: all_made(screen), pilot)
        made = rows_of(screen)
        assert any(slices), "the rest of the rows were not made after the first screen"
        firsts = [(r.first.timestamp, r.first.key) for r in screen.rows]
        assert firsts == sorted(firsts)  # each row where its first event falls in time
        listed = sum(len(run.events) for run in screen.runs)
        assert sum(len(keys) for _, _, keys in made) == listed
        assert len(made) > 20 and len({run for run, _, _ in made}) == len(screen.runs)
        assert await made_at_once(screen, pilot) == made
        title = str(screen.query_one("#events-pane").border_title)
        assert title.startswith(f"events ({len(made)})")
        for index, run in enumerate(screen.runs, 1):  # step ranges, once the screen showed
            low, high = run.steps
            line = screen.render_run(index, 80).plain
            assert line.endswith(f"{run.run_id[:8]} {low}-{high}")


async def test_until_the_first_screen_shows_only_its_rows_are_made_and_a_jump_makes_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Held at the first screen (what comes after it never runs here): a screen of rows,
    "…" for their count, no step range by the run; a jump to the last step, End and f each
    make them all first."""
    monkeypatch.setattr(JobScreen, "_screen_shown", lambda self: None)
    storage, job_id = await storage_with(partial(long_job, steps=150))
    app = PerstackApp(storage)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_job(app, pilot, job_id)
        shown = screen.events_list.row_count
        assert screen.events_list.size.height <= shown < 60
        assert "events (…)" in str(screen.query_one("#events-pane").border_title)
        run_line = screen.render_run(1, 80).plain  # its step range read off every event later
        assert run_line.endswith(screen.runs[0].run_id[:8])
        last_step = screen.runs[0].steps[1]
        assert screen.jump_to_step(last_step)
        assert all_made(screen) and screen.current_row.step == last_step
        assert len(screen.rows) > 150

    for keys in (["end"], ["f"]):
        app = PerstackApp(storage)
        async with app.run_test(size=(120, 36)) as pilot:
            screen = await open_job(app, pilot, job_id)
            assert not all_made(screen)
            await pilot.press(*keys)
            assert all_made(screen)
            assert screen.events_list.cursor == len(screen.rows) - 1
            assert screen.current_row.first.type == "completeRun"


async def test_the_screen_paints_without_its_rows_when_they_take_a_while() -> None:
    """Its paints wait for the rows (one paint with them), but not for a slow listing; the
    screen built meanwhile takes over the listing begun before it (no second one)."""
    storage, job_id = await storage_with(partial(long_job, steps=10))
    gate = asyncio.Event()
    list_event_metas = storage.list_event_metas
    listings = []

    async def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        listings.append(args)
        await gate.wait()
        return await list_event_metas(*args, **kwargs)

    storage.list_event_metas = slow  # type: ignore[method-assign]
    app = PerstackApp(storage)
    async with app.run_test(size=(120, 36)) as pilot:
        app.open_job(job_id)
        await wait_for(lambda: isinstance(app.screen, JobScreen) and app.screen.is_mounted, pilot)
        screen = app.screen
        await wait_for(lambda: not screen.holds_paint, pilot, timeout=2.0)
        assert not screen.rows
        assert "loading events" in screen.events_list.empty_text
        await wait_for(gc.isenabled, pilot)  # collection resumes with the first paint
        gate.set()
        await wait_for(lambda: screen.rows and screen.all_rows_made, pilot)
        assert not screen.holds_paint
        assert len(listings) == 1


async def test_a_quick_listing_is_done_before_the_screen_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Opening a job lists its runs first, with nothing else being built: when the listing
    returns, the job screen is not there yet; it shows those runs without listing again,
    as many rows as its list has room for (a tall terminal: more than a first guess)."""
    monkeypatch.setattr(JobScreen, "_screen_shown", lambda self: None)  # its first screen only
    storage, job_id = await storage_with(partial(long_job, steps=40))
    list_event_metas = storage.list_event_metas
    pushed_when_listed = []
    collecting = []  # cyclic collection: put off while the screen is listed and built

    async def spied(*args, **kwargs):  # type: ignore[no-untyped-def]
        listed = await list_event_metas(*args, **kwargs)
        pushed_when_listed.append(isinstance(app.screen, JobScreen))
        collecting.append(gc.isenabled())
        return listed

    storage.list_event_metas = spied  # type: ignore[method-assign]
    app = PerstackApp(storage)
    async with app.run_test(size=(120, 100)) as pilot:
        await pilot.pause()
        screen = await open_job(app, pilot, job_id)
        assert pushed_when_listed == [False]
        assert collecting == [False]
        await wait_for(gc.isenabled, pilot)  # and back once the first screen is painted
        assert screen.events_list.size.height > job_screen._FIRST_ROWS + job_screen._UNSETTLED
        assert screen.events_list.size.height <= len(screen.rows)


async def test_opening_another_job_while_one_lists_shows_the_other_only() -> None:
    """The first job's listing (stuck) is dropped when a second job is opened: its screen
    never shows, and the second job's does, with its own rows."""
    storage, job_id = await storage_with(partial(long_job, steps=10))
    other = build_job(partial(long_job, steps=5), seed=9, start_ms=ANCHOR + 1000)
    await write_job(storage, other)
    list_event_metas = storage.list_event_metas
    stuck = asyncio.Event()
    cancelled = []

    async def gated(job, *args, **kwargs):  # type: ignore[no-untyped-def]
        if job == job_id:
            try:
                await stuck.wait()
            except asyncio.CancelledError:
                cancelled.append(job)
                raise
        return await list_event_metas(job, *args, **kwargs)

    storage.list_event_metas = gated  # type: ignore[method-assign]
    app = PerstackApp(storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        app.open_job(job_id)
        await pilot.pause()
        screen = await open_job(app, pilot, other.job_id)
        assert screen.job_id == other.job_id
        assert {row.run_id for row in screen.rows} <= {run.run_id for run in screen.runs}
        assert cancelled == [job_id]
        assert [s.job_id for s in app.screen_stack if isinstance(s, JobScreen)] == [other.job_id]
        await wait_for(gc.isenabled, pilot)  # the dropped opening puts nothing off for good
