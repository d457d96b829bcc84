"""The checkpoint screen on the real fixture job: prev/next, diff, list by step, back to events."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import OptionList

from perstack_tui import keys
from perstack_tui.catalog import Catalog
from perstack_tui.storage.filesystem import FileSystemStorage
from perstack_tui.tui.screens.checkpoint import FILE_SOURCE, CheckpointScreen
from tests.conftest import COORDINATOR_JOB

COORDINATOR_RUN = "r3k7c4urwywzgewayor7pkse"
HELPER_RUN = "hadyhjk3onqq4qi3j6ixtsng"
STEP_1_EVENT = keys.event_key(
    COORDINATOR_JOB, COORDINATOR_RUN, 1795299383126, 1, "continueToNextStep"
)
DEADLINE = 10.0


class CheckpointApp(App):
    """Pushes the screen under test and records what it dismissed with."""

    def __init__(self, screen_factory: Callable[[], CheckpointScreen]) -> None:
        super().__init__()
        self.screen_factory = screen_factory
        self.results: list[Any] = []

    def on_mount(self) -> None:
        self.push_screen(self.screen_factory(), self.results.append)


def all_text(widget: Widget) -> str:
    lines = widget.render_lines(Region(0, 0, widget.size.width, widget.virtual_size.height))
    return "\n".join(strip.text.rstrip() for strip in lines)


async def wait_for(pilot: Any, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def settled(pilot: Any) -> CheckpointScreen:
    """The screen once its checkpoint is shown and the checkpoint files are placed."""
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CheckpointScreen), "the screen")
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.checkpoint is not None, "the first checkpoint")
    await wait_for(
        pilot,
        lambda: not screen.is_loading and not screen.scanning and screen.files_listed,
        "loading to finish",
    )
    await pilot.pause()
    return screen


def readable(screen: CheckpointScreen) -> str:
    return all_text(screen.query_one("#cp-readable-text"))


async def wait_step(pilot: Any, screen: CheckpointScreen, step: int) -> None:
    await wait_for(
        pilot,
        lambda: (
            not screen.is_loading
            and screen.checkpoint is not None
            and screen.checkpoint.stepNumber == step
        ),
        f"step {step}",
    )
    await pilot.pause()


def app_for(storage: FileSystemStorage, target: Any, **kwargs: Any) -> CheckpointApp:
    catalog = Catalog(storage)
    return CheckpointApp(lambda: CheckpointScreen(catalog, COORDINATOR_JOB, target, **kwargs))


async def test_previous_and_next_walk_the_jobs_checkpoints_by_step(real_storage):
    async with app_for(real_storage, STEP_1_EVENT).run_test(size=(120, 36)) as pilot:
        screen = await settled(pilot)
        # events carry steps 1 and 4; the step 2 checkpoint exists only as a file, placed
        # by the id step 1's event names; step 4's file is not placed until read
        assert [(e.step, e.run_id) for e in screen.entries] == [
            (1, COORDINATOR_RUN),
            (2, COORDINATOR_RUN),
            (4, HELPER_RUN),
            (-1, ""),
        ]
        text = readable(screen)
        assert "step 1  proceeding" in text
        assert "168 tokens (in 123, out 45)" in text
        assert "0.13% of 131,072 tokens" in text
        assert "✗ readTextFile (error)" in text
        await pilot.press("right_square_bracket")
        await wait_step(pilot, screen, 2)
        text = readable(screen)
        assert "stoppedByDelegate" in text
        assert "→ demo-helper: Summarize the word perstack" in text
        await pilot.press("right_square_bracket")
        await wait_step(pilot, screen, 4)
        assert "Delegated by demo-coordinator" in readable(screen)
        # step 4's event names the id of the last file: one entry for both
        assert [e.step for e in screen.entries] == [1, 2, 4]
        await pilot.press("right_square_bracket")  # no later one: stays
        await pilot.pause()
        assert screen.checkpoint.stepNumber == 4
        await pilot.press("left_square_bracket")
        await wait_step(pilot, screen, 2)


async def test_diff_shows_status_usage_delta_and_the_delegation_added(real_storage):
    step_2 = "pqddsbnfwoeknpfn5jdqyfa9"  # opened by checkpoint id, as the events screen does
    async with app_for(real_storage, step_2).run_test(size=(120, 36)) as pilot:
        screen = await settled(pilot)
        assert screen.checkpoint.stepNumber == 2
        await pilot.press("d")
        diff_text = screen.query_one("#cp-diff-text")
        await wait_for(pilot, lambda: "Usage" in all_text(diff_text), "the diff")
        text = all_text(diff_text)
        assert "Step 1 → 2" in text
        assert "Status: proceeding → stoppedByDelegate" in text
        assert "Usage: +168 tokens (in +123, out +45)" in text
        assert "Delegation added: → demo-helper: Summarize the word perstack" in text
        assert "New messages (1)" in text
        # d again: back to the checkpoint
        await pilot.press("d")
        assert screen.view == "readable"


async def test_list_by_step_opens_the_selected_checkpoint(real_storage):
    async with app_for(real_storage, STEP_1_EVENT).run_test(size=(120, 36)) as pilot:
        screen = await settled(pilot)
        await pilot.press("l")
        options = screen.query_one(OptionList)
        assert options.has_focus
        await wait_for(pilot, lambda: not screen.scanning, "the files read")
        assert options.option_count == 3
        labels = [str(options.get_option_at_index(i).prompt) for i in range(3)]
        assert labels[0].startswith("step    1")
        assert "stoppedByDelegate" in labels[1] and FILE_SOURCE in labels[1]
        assert "completeRun" in labels[2]
        await pilot.press("down", "down", "enter")
        await wait_step(pilot, screen, 4)
        assert screen.view == "readable"


async def test_e_goes_back_to_the_events_of_the_checkpoints_step(real_storage):
    async with app_for(real_storage, STEP_1_EVENT).run_test(size=(120, 36)) as pilot:
        screen = await settled(pilot)
        await pilot.press("right_square_bracket", "right_square_bracket")
        await wait_step(pilot, screen, 4)
        await pilot.press("e")
        await wait_for(pilot, lambda: pilot.app.results, "dismissal")
        assert pilot.app.results == [(HELPER_RUN, 4)]


async def test_escape_dismisses_with_none(real_storage):
    async with app_for(real_storage, STEP_1_EVENT).run_test(size=(120, 36)) as pilot:
        await settled(pilot)
        await pilot.press("escape")
        await wait_for(pilot, lambda: pilot.app.results, "dismissal")
        assert pilot.app.results == [None]


async def test_raw_view_shows_the_checkpoint_json(real_storage):
    async with app_for(real_storage, STEP_1_EVENT).run_test(size=(120, 36)) as pilot:
        screen = await settled(pilot)
        assert screen.raw_shown is None  # a copy of the whole checkpoint: made when shown
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.raw_shown is screen.checkpoint, "the raw view")
        tree = screen.query_one("#cp-raw").tree
        assert tree.has_focus
        names = [child.data.name for child in tree.root.children]
        assert {"id", "status", "stepNumber", "messages", "usage", "expert"} <= set(names)
        assert tree.document["stepNumber"] == 1
        await pilot.press("]")  # the raw view follows the checkpoint shown
        await wait_step(pilot, screen, 2)
        await wait_for(pilot, lambda: screen.raw_shown is screen.checkpoint, "the next raw")
        assert screen.view == "raw"
        assert tree.document["stepNumber"] == 2


async def test_a_ten_megabyte_checkpoint_file_opens_without_freezing(real_dir: Path):
    chunk = "lorem ipsum dolor sit amet " * 40
    messages = [
        {"type": "userMessage", "id": f"m{i}", "contents": [{"type": "textPart", "text": chunk}]}
        for i in range(10_000)
    ]
    big = {
        "id": "bigcheckpoint",
        "jobId": COORDINATOR_JOB,
        "runId": HELPER_RUN,
        "status": "proceeding",
        "stepNumber": 3,
        "messages": messages,
        "usage": {"totalTokens": 5},
    }
    path = real_dir / "jobs" / COORDINATOR_JOB / "checkpoints" / "bigcheckpoint.json"
    path.write_text(json.dumps(big))
    assert path.stat().st_size > 10_000_000
    storage = FileSystemStorage(real_dir)
    async with app_for(storage, "bigcheckpoint").run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, CheckpointScreen), "screen")
        screen = pilot.app.screen
        assert screen.is_loading  # the loading bar shows while the file is read and parsed
        await pilot.press("r")  # and keys are handled meanwhile
        assert screen.view == "raw"
        await pilot.press("r")
        await wait_step(pilot, screen, 3)
        assert "9,940 earlier messages (press m to show more)" in readable(screen)
        await wait_for(pilot, lambda: screen.files_listed, "the file listing")
        await pilot.press("l")
        await wait_for(pilot, lambda: [e.step for e in screen.entries] == [1, 2, 3, 4], "list")


async def test_unreadable_checkpoint_file_is_listed_last_and_shows_key_and_reason(
    real_dir: Path,
):
    broken = real_dir / "jobs" / COORDINATOR_JOB / "checkpoints" / "broken.json"
    broken.write_text('{"id": "broken", "stepNumber": ')
    storage = FileSystemStorage(real_dir)
    async with app_for(storage, "broken").run_test(size=(120, 36)) as pilot:
        screen = await settled(pilot)
        text = readable(screen)
        assert "UNREADABLE" in text
        assert f"jobs/{COORDINATOR_JOB}/checkpoints/broken.json" in text
        assert "not valid JSON" in text
        await pilot.press("l")
        await wait_for(pilot, lambda: [e.step for e in screen.entries] == [1, 2, 4, -1], "list")
        last = str(screen.query_one(OptionList).get_option_at_index(3).prompt)
        assert last.startswith("step    ?  unreadable")
        await pilot.press("escape", "e")  # its step is unknown: stays, with a notice
        await pilot.pause()
        assert pilot.app.results == []


class CountingStorage(FileSystemStorage):
    """The real filesystem storage, noting every key it reads."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: list[str] = []

    async def read_bytes(self, key: str) -> bytes:
        self.reads.append(key)
        return await super().read_bytes(key)


async def test_checkpoints_are_read_only_when_shown_diffed_or_listed(real_dir: Path):
    storage = CountingStorage(real_dir)
    catalog = Catalog(storage)
    refs = await catalog.checkpoint_refs(COORDINATOR_JOB)
    step_4 = refs[-1]
    assert step_4.step == 4
    app = CheckpointApp(lambda: CheckpointScreen(catalog, COORDINATOR_JOB, step_4, refs=refs))
    storage.reads.clear()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await settled(pilot)
        assert storage.reads == [step_4.key]  # no checkpoint file read to learn steps
        await pilot.press("d")  # the diff reads the previous one only
        diff_text = screen.query_one("#cp-diff-text")
        await wait_for(pilot, lambda: "Step" in all_text(diff_text), "the diff")
        assert storage.reads == [step_4.key, refs[0].key]
        await pilot.press("d", "l")  # the list reads the file no shown event named
        await wait_for(pilot, lambda: not any(e.unread_file for e in screen.entries), "list")
        step_2_file = keys.checkpoint_key(COORDINATOR_JOB, "pqddsbnfwoeknpfn5jdqyfa9")
        assert storage.reads[2:] == [step_2_file]


async def test_o_opens_the_whole_checkpoint_in_the_pager(real_storage):
    from perstack_tui.tui.pager import PagerScreen

    async with app_for(real_storage, STEP_1_EVENT).run_test(size=(120, 36)) as pilot:
        screen = await settled(pilot)
        title = all_text(screen.query_one("#cp-title"))
        assert "step 1 (1 of 3)" in title and "1 unread file (l)" in title
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PagerScreen), "the pager")
        assert "Conversation (" in pilot.app.screen.text
        assert "more lines (press o to open)" not in pilot.app.screen.text
