"""Pilot tests of the jobs list and the job screen, driven by keys on the real fixtures."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from textual.binding import Binding
from textual.widgets._footer import FooterKey

from perstack_tui.storage.base import NotFoundError, StorageError
from perstack_tui.storage.filesystem import FileSystemStorage
from perstack_tui.tui.app import PerstackApp, Target
from perstack_tui.tui.screens.job import JobScreen
from perstack_tui.tui.screens.jobs import JobsScreen
from perstack_tui.tui.widgets.footer import Footer
from tests.conftest import COORDINATOR_JOB, ERROR_JOB, PROGRAMMATIC_JOB

from .helpers import FIXED_NOW, row_texts, wait_for

HELPER_RUN = "hadyhjk3onqq4qi3j6ixtsng"
COORDINATOR_RUN = "r3k7c4urwywzgewayor7pkse"


def make_app(storage, **kwargs) -> PerstackApp:  # type: ignore[no-untyped-def]
    return PerstackApp(storage, now=lambda: FIXED_NOW, **kwargs)


def jobs_loaded(app: PerstackApp) -> bool:
    screen = app.screen
    return (
        isinstance(screen, JobsScreen)
        and len(screen.order) == 3
        and all((s := app.catalog.cached_job(j)) and not s.partial for j in screen.order)
        and screen.order[0] == PROGRAMMATIC_JOB
    )


async def open_coordinator_job(app: PerstackApp, pilot) -> JobScreen:  # type: ignore[no-untyped-def]
    await wait_for(lambda: jobs_loaded(app), pilot)
    jobs = app.screen
    assert isinstance(jobs, JobsScreen)
    jobs.select_job(COORDINATOR_JOB)
    await pilot.press("enter")
    await wait_for(
        lambda: isinstance(app.screen, JobScreen) and app.screen.all_rows_made and app.screen.rows,
        pilot,
    )
    return app.screen  # type: ignore[return-value]


async def test_jobs_list_shows_every_job_newest_first_with_status(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: jobs_loaded(app), pilot)
        screen = app.screen
        assert screen.order == [PROGRAMMATIC_JOB, ERROR_JOB, COORDINATOR_JOB]
        rows = row_texts(screen.list)
        assert "completed" in rows[0] and "demo-coordinator" in rows[0]
        assert "error" in rows[1] and "demo-helper" in rows[1]
        assert "2026-11-21" in rows[2] and "ago" in rows[2]


async def test_the_app_is_left_out_of_garbage_collections_while_it_runs(
    real_storage, monkeypatch
) -> None:
    """Once drawn, the app's own objects are frozen (no full collection walks them again:
    those stalled the event loop); unfrozen when it exits, as the process may go on."""
    gc.unfreeze()
    freezes = []
    freeze = gc.freeze
    monkeypatch.setattr(gc, "freeze", lambda: (freezes.append(1), freeze()))
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: gc.get_freeze_count() > 0, pilot)
        await wait_for(lambda: jobs_loaded(app), pilot)
        assert len(freezes) == 1  # once, not on every refresh
    assert gc.get_freeze_count() == 0


async def test_the_job_screens_modules_are_imported_once_the_jobs_list_is_filled(
    real_storage, monkeypatch
) -> None:
    """What a job screen's first opening would import (~25 ms) is imported while the jobs
    list's first screen is read, once it is filled: not before, not again."""
    from perstack_tui.tui.screens import job

    filled: list[bool] = []
    warm_up = job.warm_up
    monkeypatch.setattr(job, "warm_up", lambda: (filled.append(jobs_loaded(app)), warm_up()))
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: filled, pilot)
        assert app.screen.warmed_up.is_set()
        await open_coordinator_job(app, pilot)
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, JobsScreen), pilot)
        await pilot.pause()
    assert filled == [True]


WARMED_OPENING = """
import asyncio, json, sys, time
from perstack_tui.storage.filesystem import FileSystemStorage
from perstack_tui.tui.app import PerstackApp
from perstack_tui.tui.screens import job

async def main():
    app = PerstackApp(FileSystemStorage(sys.argv[1]))
    async with app.run_test(size=(120, 36)) as pilot:
        await asyncio.wait_for(app.screen.warmed_up.wait(), 30)
        before = set(sys.modules)
        app.open_job(sys.argv[2])
        deadline = time.monotonic() + 30
        while not (isinstance(app.screen, job.JobScreen) and app.screen.events):
            assert time.monotonic() < deadline, "the job screen did not show its events"
            await pilot.pause(0.02)
        await app.screen.wait_for_refresh()
        print(json.dumps(sorted(set(sys.modules) - before)))

asyncio.run(main())
"""


def test_a_job_screen_opened_after_the_warm_up_imports_nothing_of_its_own(real_dir) -> None:
    """In a fresh process, as a user's first opening of a job: everything the job screen
    and its detail pane need is imported by then."""
    result = subprocess.run(
        [sys.executable, "-c", WARMED_OPENING, str(real_dir), COORDINATOR_JOB],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    ours = [m for m in imported if m.split(".")[0] in ("perstack_tui", "textual", "rich")]
    assert ours == []


async def test_rows_are_newest_first_before_any_event_is_read(real_dir) -> None:
    class EventsHeldBack(FileSystemStorage):
        """Reads of events wait until the test lets them through."""

        gate: asyncio.Event

        async def read_bytes(self, key: str) -> bytes:
            if "/event-" in key:
                await self.gate.wait()
            return await super().read_bytes(key)

    storage = EventsHeldBack(real_dir)
    storage.gate = asyncio.Event()
    app = make_app(storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(
            lambda: isinstance(app.screen, JobsScreen) and app.screen._scanned.is_set(), pilot
        )
        screen = app.screen
        # status, start and steps from the names alone: newest first at once
        assert screen.order == [PROGRAMMATIC_JOB, ERROR_JOB, COORDINATOR_JOB]
        assert app.catalog.cached_job(COORDINATOR_JOB).partial
        rows = row_texts(screen.list)
        assert "completed" in rows[2] and "…" in rows[2] and "demo-coordinator" not in rows[2]
        assert "demo-coordinator" in rows[0]  # job.json: complete from the start
        storage.gate.set()
        await wait_for(lambda: jobs_loaded(app), pilot)
        assert "demo-coordinator" in row_texts(screen.list)[2]


async def test_typing_a_filter_keeps_only_matching_jobs_and_esc_clears_it(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: jobs_loaded(app), pilot)
        await pilot.press("slash", *"helper")
        screen = app.screen
        assert screen.order == [ERROR_JOB]
        await pilot.press("enter")  # keeps the filter, back to the list
        assert screen.list.has_focus and screen.order == [ERROR_JOB]
        await pilot.press("escape")
        assert len(screen.order) == 3


async def test_sort_key_cycles_and_keeps_the_cursor_on_the_same_job(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: jobs_loaded(app), pilot)
        screen = app.screen
        screen.select_job(ERROR_JOB)
        await pilot.press("s")  # by expert
        assert screen.sort_name == "expert"
        assert screen.order[-1] == ERROR_JOB  # demo-helper after demo-coordinator
        assert screen.current_job_id == ERROR_JOB


async def test_job_screen_nests_the_delegate_run_under_its_caller(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        assert [r.run_id for r in screen.runs] == [COORDINATOR_RUN, HELPER_RUN]
        assert [r.depth for r in screen.runs] == [0, 1]
        runs = row_texts(screen.runs_list)
        assert runs[0].startswith("≡ all runs (8 events)")
        assert runs[2].startswith("  └ ") and "demo-helper" in runs[2]


async def test_events_are_grouped_by_step_with_gists_and_the_corrupt_file_marked(
    real_storage,
) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        await wait_for(
            lambda: all(m.key in screen.events for r in screen.rows for m in r.metas), pilot
        )
        rows = row_texts(screen.events_list)
        types = [r.first.type for r in screen.rows]
        assert types[0] == "startRun" and "callDelegate" in types
        delegate_row = rows[types.index("callDelegate")]
        assert "→ demo-helper: Summarize the word perstack" in delegate_row
        results = rows[types.index("resolveToolResults")]
        assert "✓ healthCheck" in results
        # the corrupt streamRunResult (the only chunk of its stream) has a row of its own
        corrupt = [r.first.type for r in screen.rows].index("streamRunResult")
        assert screen.rows[corrupt].stream is None
        assert "unreadable: not valid JSON" in rows[corrupt]
        # the step number is printed once, on the first row of each step
        assert rows[0].split()[0] == "1" and not rows[1].startswith("   1")


async def test_walking_events_updates_the_detail_and_enter_focuses_it(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        await pilot.press("g", "j", "j")
        assert screen.events_list.cursor == 2
        title = str(screen.query_one("#detail-pane").border_title)
        assert screen.rows[2].first.type in title
        await pilot.press("enter")
        assert screen.detail.has_focus or screen.detail in app.focused.ancestors
        await pilot.press("escape")
        assert screen.events_list.has_focus


async def test_enter_on_call_delegate_jumps_to_the_delegate_and_esc_returns(
    real_storage,
) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        index = [r.first.type for r in screen.rows].index("callDelegate")
        screen.events_list.set_cursor(index)
        await pilot.press("enter")
        await wait_for(lambda: screen.current_row.run_id == HELPER_RUN, pilot)
        await pilot.press("escape")
        assert screen.events_list.cursor == index
        # and from the delegate's run, u goes to the callDelegate that started it
        screen.select_run(HELPER_RUN)
        await pilot.press("u")
        assert screen.run_choice == COORDINATOR_RUN
        assert screen.current_row.first.type == "callDelegate"


async def test_selecting_a_run_shows_only_its_events(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        await pilot.press("tab")  # detail
        await pilot.press("tab")  # runs
        assert screen.runs_list.has_focus
        await pilot.press("j", "j")
        assert screen.run_choice == HELPER_RUN
        assert {r.run_id for r in screen.rows} == {HELPER_RUN}


async def test_quick_filters_errors_tools_delegations_and_step_range(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        await pilot.press("t")
        assert [r.first.type for r in screen.rows] == ["callTools", "resolveToolResults"]
        await pilot.press("t", "D")
        assert [r.first.type for r in screen.rows] == ["callDelegate"]
        await pilot.press("D", "number_sign", *"2-4", "enter")
        assert {r.step for r in screen.rows} == {2, 4}
        await pilot.press("x")
        assert len(screen.rows) == 8
        await wait_for(lambda: all(r.key in screen.events for r in screen.rows), pilot)
        # errors: the tool result that failed (Perstack's log shows it as a success) and
        # the corrupt file (once read)
        await pilot.press("E")
        await wait_for(
            lambda: (
                [r.first.type for r in screen.rows] == ["resolveToolResults", "streamRunResult"]
            ),
            pilot,
        )
        assert (
            "✗ readTextFile: File missing.txt does not exist." in row_texts(screen.events_list)[0]
        )


async def test_errors_filter_shows_stop_run_by_error(real_storage) -> None:
    app = make_app(real_storage, target=Target(ERROR_JOB))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(
            lambda: (
                isinstance(app.screen, JobScreen) and app.screen.all_rows_made and app.screen.rows
            ),
            pilot,
        )
        screen = app.screen
        await pilot.press("E")
        assert [r.first.type for r in screen.rows] == ["stopRunByError"]
        await wait_for(
            lambda: "AI_NoOutputGeneratedError: No output" in row_texts(screen.events_list)[0],
            pilot,
        )


async def test_y_copies_the_event_id_open_accepts_and_Y_copies_json(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        await pilot.press("g", "y")
        assert app.clipboard == f"{COORDINATOR_JOB}/{COORDINATOR_RUN}#1"
        await wait_for(lambda: screen.rows[0].key in screen.events, pilot)
        await pilot.press("Y")
        assert json.loads(app.clipboard)["type"] == "startRun"


async def test_open_target_starts_at_the_run_and_step(real_storage) -> None:
    app = make_app(real_storage, target=Target(COORDINATOR_JOB, HELPER_RUN, 4))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(
            lambda: (
                isinstance(app.screen, JobScreen) and app.screen.all_rows_made and app.screen.rows
            ),
            pilot,
        )
        screen = app.screen
        assert screen.run_choice == HELPER_RUN
        assert screen.current_row.step == 4


async def test_export_job_writes_the_key_tree_with_secrets_masked(
    real_storage, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    app = make_app(real_storage, export_dir=out)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: jobs_loaded(app), pilot)
        app.screen.select_job(PROGRAMMATIC_JOB)
        await pilot.press("e")
        settings = list(out.glob(f"jobs/{PROGRAMMATIC_JOB}/runs/*/run-setting.json"))
        await wait_for(
            lambda: list(out.glob(f"jobs/{PROGRAMMATIC_JOB}/runs/*/run-setting.json")), pilot
        )
        settings = list(out.glob(f"jobs/{PROGRAMMATIC_JOB}/runs/*/run-setting.json"))
        assert (out / "jobs" / PROGRAMMATIC_JOB / "job.json").is_file()
        assert json.loads(settings[0].read_text())["env"] == {"EXAMPLE_SECRET": "********"}
        assert "redacted-example" not in settings[0].read_text()


async def test_export_event_from_the_job_screen(real_storage, tmp_path: Path) -> None:
    out = tmp_path / "out"
    app = make_app(real_storage, export_dir=out)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_coordinator_job(app, pilot)
        await pilot.press("g", "e")
        target = out / screen.rows[0].key
        await wait_for(target.is_file, pilot)
        assert json.loads(target.read_text())["type"] == "startRun"


def help_text(app: PerstackApp) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    for widget in app.screen.query("Static"):
        console.print(widget.content)
    return console.export_text()


async def test_help_lists_the_keys_of_every_screen_from_their_bindings(
    real_storage, monkeypatch
) -> None:
    from perstack_tui.tui.screens.checkpoint import CheckpointScreen
    from perstack_tui.tui.screens.help import help_sections

    added = Binding("z", "zoom", "zoom", tooltip="a key added to the checkpoint screen")
    monkeypatch.setattr(CheckpointScreen, "BINDINGS", [*CheckpointScreen.BINDINGS, added])
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("question_mark")
        text = " ".join(help_text(app).split())
        sections = help_sections(list(app.BINDINGS))
        titles = [title for title, _ in sections]
        for title in ("Event detail (focused)", "JSON tree (raw views)", "Checkpoint"):
            assert title in titles and title in text
        for _title, bindings in sections:
            for binding in bindings:
                assert (binding.tooltip or binding.description) in text, binding
        assert "a key added to the checkpoint screen" in text
        assert "open in $EDITOR" in text and "search keys and values" in text
        await pilot.press("escape")
        assert isinstance(app.screen, JobsScreen)


async def test_palette_jumps_to_a_job_by_expert(real_storage) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: jobs_loaded(app), pilot)
        await pilot.press("colon", *"demo-helper")
        await wait_for(
            lambda: (
                "demo-helper"
                in str(app.screen.query("OptionList").first().get_option_at_index(0).prompt)
                if app.screen.query("OptionList")
                and app.screen.query("OptionList").first().option_count
                else False
            ),
            pilot,
        )
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, JobScreen) and app.screen.is_mounted, pilot)
        assert app.screen.job_id == ERROR_JOB


class FailingStorage(FileSystemStorage):
    """A storage whose listings fail until ``healthy`` is set (a server that is down)."""

    healthy = False

    async def list_prefixes(self, prefix: str) -> list[str]:
        if not self.healthy:
            raise StorageError("connection refused: 127.0.0.1:9")
        return await super().list_prefixes(prefix)


async def test_failing_storage_shows_the_error_and_R_retries(real_dir: Path) -> None:
    storage = FailingStorage(real_dir)
    app = make_app(storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: app.storage_state == "error", pilot)
        screen = app.screen
        assert "connection refused" in screen.list.empty_text
        assert "connection refused" in str(app.screen.query_one("StorageHeader").render())
        storage.healthy = True
        await pilot.press("R")
        await wait_for(lambda: jobs_loaded(app), pilot)
        assert app.storage_state == "ok"


async def test_a_job_that_does_not_exist_says_so(real_storage) -> None:
    app = make_app(real_storage, target=Target("nosuchjob"))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: isinstance(app.screen, JobScreen) and app.screen.is_mounted, pilot)
        await wait_for(lambda: "no job 'nosuchjob' in" in app.screen.events_list.empty_text, pilot)


def test_not_found_is_a_storage_error() -> None:
    # the app catches StorageError; NotFoundError must be one of them
    assert issubclass(NotFoundError, StorageError)


async def test_enter_right_after_start_opens_the_top_job_and_the_count_shows(
    real_storage,
) -> None:
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: jobs_loaded(app), pilot)
        await pilot.pause()
        jobs = app.screen
        # ids came in id order; the summaries re-sorted them; the untouched cursor stays on top
        assert jobs.list.cursor == 0
        status = jobs.query_one("#jobs-status")
        footer = jobs.query_one("Footer")
        assert "3 jobs" in str(status.render())
        assert status.region.height == 1 and status.region.bottom <= footer.region.y
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, JobScreen) and app.screen.is_mounted, pilot)
        assert app.screen.job_id == PROGRAMMATIC_JOB


async def test_the_footer_follows_the_focus_and_is_rebuilt_only_when_its_keys_change(
    real_storage, monkeypatch
) -> None:
    """The keys of the focused pane are shown (the detail adds its own); the signals that
    change nothing the footer shows (a screen opening sends several) rebuild nothing."""
    rebuilds: list[object] = []
    rebuild = Footer.recompose

    async def counted(self) -> None:  # type: ignore[no-untyped-def]
        rebuilds.append(self.screen)
        await rebuild(self)

    monkeypatch.setattr(Footer, "recompose", counted)
    app = make_app(real_storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(lambda: jobs_loaded(app), pilot)
        app.open_job(COORDINATOR_JOB)
        await wait_for(
            lambda: (
                isinstance(app.screen, JobScreen) and app.screen.all_rows_made and app.screen.rows
            ),
            pilot,
        )
        screen = app.screen

        def actions() -> set[str]:
            return {key.action for key in screen.query(FooterKey)}

        await wait_for(lambda: "follow" in actions() and not screen.detail.is_loading, pilot)
        await pilot.pause(0.2)
        assert "toggle_raw" not in actions()
        assert rebuilds.count(screen) == 1
        await pilot.press("tab")  # events -> detail: its keys join the footer
        await wait_for(lambda: "toggle_raw" in actions(), pilot)
        await pilot.press("shift+tab")
        await wait_for(lambda: "toggle_raw" not in actions(), pilot)
        assert rebuilds.count(screen) == 3
