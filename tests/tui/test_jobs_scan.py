"""The jobs list while its one-listing scan runs: rows on screen are not left blank."""

from __future__ import annotations

import asyncio

from perstack_tui.storage.filesystem import FileSystemStorage
from perstack_tui.tui.app import PerstackApp
from perstack_tui.tui.screens.jobs import JobsScreen
from tests.conftest import COORDINATOR_JOB, ERROR_JOB, PROGRAMMATIC_JOB

from .helpers import FIXED_NOW, row_texts, wait_for


class SlowTreeStorage(FileSystemStorage):
    """The recursive listing waits until the test lets it through (a large bucket)."""

    gate: asyncio.Event

    async def list_job_trees(self, job_ids=None):  # type: ignore[no-untyped-def]
        await self.gate.wait()
        return await super().list_job_trees(job_ids)


async def test_rows_on_screen_fill_in_while_the_scan_runs_then_sort_newest_first(real_dir):
    storage = SlowTreeStorage(real_dir)
    storage.gate = asyncio.Event()
    app = PerstackApp(storage, now=lambda: FIXED_NOW)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: isinstance(app.screen, JobsScreen) and app.screen.order, pilot)
        screen = app.screen
        await wait_for(lambda: "demo-helper" in "".join(row_texts(screen.list)), pilot)
        assert not screen._scanned.is_set()  # filled one job at a time, scan still listing
        storage.gate.set()
        await wait_for(lambda: screen._scanned.is_set() and not screen._pending, pilot)
        assert screen.order == [PROGRAMMATIC_JOB, ERROR_JOB, COORDINATOR_JOB]
        assert not any(app.catalog.cached_job(j).partial for j in screen.order)


async def visit_once(real_dir) -> None:  # type: ignore[no-untyped-def]
    """A first visit that sees every job whole: the job index is saved on the way out."""
    first = PerstackApp(FileSystemStorage(real_dir), now=lambda: FIXED_NOW)
    async with first.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: isinstance(first.screen, JobsScreen) and first.screen.order, pilot)
        await wait_for(lambda: first.screen._scanned.is_set() and not first.screen._pending, pilot)


def rows_ordered(app: PerstackApp) -> bool:
    return isinstance(app.screen, JobsScreen) and app.screen._ordered.is_set()


async def test_a_reopen_is_newest_first_from_the_index_before_the_scan(real_dir):
    await visit_once(real_dir)
    # the second visit's scan never finishes
    storage = SlowTreeStorage(real_dir)
    storage.gate = asyncio.Event()
    app = PerstackApp(storage, now=lambda: FIXED_NOW)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: rows_ordered(app), pilot)
        screen = app.screen
        assert screen.order == [PROGRAMMATIC_JOB, ERROR_JOB, COORDINATOR_JOB]
        # the rows on screen are checked against a listing of each job, then shown whole
        await wait_for(lambda: not screen._pending, pilot)
        assert all(app.catalog.cached_job(j).checked for j in screen.order)
        text = "".join(row_texts(screen.list))
        assert "demo-helper" in text and "demo-coordinator" in text and "error" in text
        assert not screen._scanned.is_set()
        storage.gate.set()


async def test_a_first_visit_orders_rows_by_start_before_summarizing_them(real_dir, monkeypatch):
    at_order: dict[str, object] = {}
    order_by_start = JobsScreen._order_by_start

    def spy(screen: JobsScreen, job_ids: list[str]) -> None:  # every start known, no summary
        order_by_start(screen, job_ids)
        at_order["order"] = list(screen.order)
        at_order["rows"] = row_texts(screen.list)
        at_order["scanned"] = screen._scanned.is_set()

    monkeypatch.setattr(JobsScreen, "_order_by_start", spy)
    app = PerstackApp(FileSystemStorage(real_dir), now=lambda: FIXED_NOW)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: "order" in at_order, pilot)
        assert at_order["order"] == [PROGRAMMATIC_JOB, ERROR_JOB, COORDINATOR_JOB]
        assert not at_order["scanned"] and app.screen._ordered.is_set()
        rows = at_order["rows"]
        assert all("…" in row and "completed" not in row for row in rows)  # start only
        await wait_for(lambda: app.screen._scanned.is_set() and not app.screen._pending, pilot)
        assert app.screen.order == at_order["order"]  # the summaries did not move a row
        assert "completed" in "".join(row_texts(app.screen.list))


class GatedJobStorage(SlowTreeStorage):
    """Listing one job's files (the check of a row) waits too: nothing is checked."""

    async def list_job_tree(self, job_id):  # type: ignore[no-untyped-def]
        await self.gate.wait()
        return await super().list_job_tree(job_id)


async def test_a_job_known_only_from_the_index_claims_nothing_but_its_start(real_dir):
    await visit_once(real_dir)
    storage = GatedJobStorage(real_dir)
    storage.gate = asyncio.Event()
    app = PerstackApp(storage, now=lambda: FIXED_NOW)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: rows_ordered(app), pilot)
        screen = app.screen
        rows = row_texts(screen.list)
        assert "completed" not in "".join(rows) and "demo-helper" not in "".join(rows)
        assert all("…" in row for row in rows)  # status, expert, duration... not claimed
        screen.select_job(COORDINATOR_JOB)
        await pilot.press("enter")
        await wait_for(lambda: type(app.screen).__name__ == "JobScreen", pilot)
        header = app.screen.query_one("StorageHeader")
        assert str(header.where) == f"job {COORDINATOR_JOB} · …"  # not "unknown · 0 tokens"
        storage.gate.set()
        await wait_for(lambda: "840 tokens" in str(header.where), pilot)
        assert "completed · demo-coordinator · 4 steps" in str(header.where)


async def test_a_broken_job_index_is_said_once_and_the_jobs_still_show(real_dir, cache_dir):
    from perstack_tui.index import JobIndex

    index = JobIndex.for_location(FileSystemStorage(real_dir).storage_info().location)
    index.path.parent.mkdir(parents=True)  # type: ignore[union-attr]
    index.path.write_text("not json")  # type: ignore[union-attr]
    app = PerstackApp(FileSystemStorage(real_dir), now=lambda: FIXED_NOW)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(
            lambda: isinstance(app.screen, JobsScreen) and app.screen._scanned.is_set(), pilot
        )
        notes = [str(n.message) for n in app._notifications]
        assert any("job index" in n and "not used" in n for n in notes)
        assert app.screen.order == [PROGRAMMATIC_JOB, ERROR_JOB, COORDINATOR_JOB]


async def test_a_job_index_that_cannot_be_saved_is_said(real_dir, monkeypatch):
    def refuse(*_args: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("perstack_tui.index.os.replace", refuse)
    app = PerstackApp(FileSystemStorage(real_dir), now=lambda: FIXED_NOW)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(
            lambda: any("cannot write the job index" in str(n.message) for n in app._notifications),
            pilot,
        )
        assert app.screen.order == [PROGRAMMATIC_JOB, ERROR_JOB, COORDINATOR_JOB]
