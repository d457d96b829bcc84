"""Opening a job that cannot be opened: an unsafe id or a job that does not exist."""

from __future__ import annotations

from perstack_tui.tui.app import Target
from perstack_tui.tui.screens.job import JobScreen
from perstack_tui.tui.screens.jobs import JobsScreen

from .helpers import wait_for
from .test_app import make_app


def _empty_text(app) -> str:  # type: ignore[no-untyped-def]
    screen = app.screen
    if not isinstance(screen, JobScreen) or not screen.is_mounted:
        return ""
    return screen.events_list.empty_text


async def test_unsafe_job_id_shows_a_message_instead_of_crashing(real_storage) -> None:
    app = make_app(real_storage, target=Target("..", "etc"))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: "unsafe job id" in _empty_text(app), pilot)
        assert "'..'" in _empty_text(app)
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, JobsScreen), pilot)
    assert app.return_code in (0, None)


async def test_unsafe_run_id_shows_a_message_instead_of_crashing(real_storage) -> None:
    app = make_app(real_storage, target=Target("somejob", ".."))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: "unsafe run id" in _empty_text(app), pilot)


async def test_missing_job_says_there_is_no_such_job_in_the_storage(real_storage) -> None:
    app = make_app(real_storage, target=Target("nope"))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: "no job 'nope' in" in _empty_text(app), pilot)
        assert app.storage_location in _empty_text(app)
        assert "esc" in _empty_text(app)
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, JobsScreen), pilot)
