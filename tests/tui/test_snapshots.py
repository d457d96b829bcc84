"""Snapshots of the main screens at 120x36 and 80x24 on the real fixtures, fixed clock.

Regenerate with ``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at them.
"""

from __future__ import annotations

import pytest

from perstack_tui.storage.memory import MemoryStorage
from perstack_tui.tui.app import PerstackApp, Target
from perstack_tui.tui.screens.job import JobScreen
from perstack_tui.tui.screens.jobs import JobsScreen
from tests.conftest import CLI_RUN, COORDINATOR_JOB, PROGRAMMATIC

from .helpers import FIXED_NOW, wait_for

SIZES = [(120, 36), (80, 24)]


def fixture_storage() -> MemoryStorage:
    """The real fixtures in memory, so the header shows the same location on every machine."""
    storage = MemoryStorage("real-fixtures")
    for base in (CLI_RUN, PROGRAMMATIC):
        for path in sorted(base.rglob("*.json")):
            storage.objects[path.relative_to(base).as_posix()] = (path.read_bytes(), 0.0)
    return storage


def app_at(target: Target | None = None) -> PerstackApp:
    return PerstackApp(fixture_storage(), now=lambda: FIXED_NOW, target=target)


async def jobs_ready(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    await wait_for(
        lambda: (
            isinstance(app.screen, JobsScreen)
            and len(app.screen.order) == 3
            and not app.screen._pending
        ),
        pilot,
    )
    await pilot.pause(0.5)  # the re-sort timer


async def job_ready(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    await wait_for(
        lambda: isinstance(app.screen, JobScreen) and app.screen.all_rows_made and app.screen.rows,
        pilot,
    )
    screen = app.screen

    def rows_on_screen_read() -> bool:  # the screen reads the rows it shows, no others
        first, last = screen.events_list.visible_range
        return all(r.key in screen.events for r in screen.rows[first:last])

    await wait_for(rows_on_screen_read, pilot)
    screen.events_list.set_cursor([r.first.type for r in screen.rows].index("resolveToolResults"))
    await wait_for(lambda: rows_on_screen_read() and not screen.detail.is_loading, pilot)
    await pilot.pause(0.3)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_jobs_screen(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_at(), terminal_size=size, run_before=jobs_ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_job_screen_with_detail(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_at(Target(COORDINATOR_JOB)), terminal_size=size, run_before=job_ready)


def test_help_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def open_help(pilot) -> None:  # type: ignore[no-untyped-def]
        await jobs_ready(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(app_at(), terminal_size=(120, 36), run_before=open_help)


def test_checkpoint_diff_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def open_diff(pilot) -> None:  # type: ignore[no-untyped-def]
        app = pilot.app
        await wait_for(
            lambda: (
                isinstance(app.screen, JobScreen) and app.screen.all_rows_made and app.screen.rows
            ),
            pilot,
        )
        screen = app.screen
        await wait_for(lambda: all(r.key in screen.events for r in screen.rows), pilot)
        types = [r.first.type for r in screen.rows]
        screen.events_list.set_cursor(types.index("continueToNextStep"))
        await pilot.press("c")  # step 1's checkpoint, then the next one, against step 1's
        await wait_for(lambda: getattr(app.screen, "current", None) is not None, pilot)
        await wait_for(lambda: not app.screen.is_loading, pilot)
        first = app.screen.current
        await pilot.press("right_square_bracket")
        await wait_for(lambda: app.screen.current is not first and not app.screen.is_loading, pilot)
        await pilot.press("d")
        await wait_for(lambda: app.screen.view == "diff" and not app.screen.is_loading, pilot)
        await pilot.pause(0.3)

    assert snap_compare(
        app_at(Target(COORDINATOR_JOB)), terminal_size=(120, 36), run_before=open_diff
    )
