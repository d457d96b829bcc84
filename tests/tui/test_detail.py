"""The event detail: readable conversation, raw JSON tree with search, long and big payloads."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import LoadingIndicator, TextArea

from perstack_tui import keys
from perstack_tui.models import RunEvent, Unreadable, parse_event
from perstack_tui.storage.filesystem import FileSystemStorage
from perstack_tui.tui import pager
from perstack_tui.tui.pager import PagerScreen, editor_command, open_in_editor
from perstack_tui.tui.widgets.event_view import EventDetail
from perstack_tui.tui.widgets.json_view import JsonNode, blob_label, find_matches, human_size
from tests.conftest import COORDINATOR_JOB, CORRUPT_EVENT

RUN = "r3k7c4urwywzgewayor7pkse"
HELPER_RUN = "hadyhjk3onqq4qi3j6ixtsng"
CONTINUE = keys.event_key(COORDINATOR_JOB, RUN, 1795299383126, 1, "continueToNextStep")
DEADLINE = 10.0


class DetailApp(App):
    def compose(self) -> ComposeResult:
        yield EventDetail()


def screen_text(widget: Widget) -> str:
    """What a widget shows, as plain text lines."""
    region = Region(0, 0, widget.size.width, widget.size.height)
    return "\n".join(strip.text.rstrip() for strip in widget.render_lines(region))


def full_text(detail: EventDetail) -> str:
    """Everything the readable view holds (rendered at the widget's width, not only visible)."""
    static = detail.readable_text
    lines = static.render_lines(Region(0, 0, static.size.width, static.virtual_size.height))
    return "\n".join(strip.text.rstrip() for strip in lines)


async def wait_for(pilot: Any, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def show(pilot: Any, event: RunEvent | Unreadable, **kwargs: Any) -> EventDetail:
    detail = pilot.app.query_one(EventDetail)
    detail.show(event, **kwargs)
    await wait_for(pilot, lambda: not detail.is_loading, "the event to load")
    await pilot.pause()
    return detail


@pytest.fixture
async def continue_event(real_storage: FileSystemStorage) -> RunEvent:
    event = await real_storage.read_event(CONTINUE)
    assert isinstance(event, RunEvent)
    return event


async def test_readable_view_shows_the_conversation_with_tool_calls_errors_and_thinking(
    continue_event,
):
    async with DetailApp().run_test(size=(120, 36)) as pilot:
        detail = await show(pilot, continue_event)
        text = full_text(detail)
        assert "continueToNextStep  step 1" in text
        assert "Let me think about this request." in text
        assert '→ readTextFile {"path": "missing.txt"}  call_read_1' in text
        assert "✗ readTextFile (error)  call_read_1" in text
        assert "✓ healthCheck  call_health_1" in text
        assert "stoppedByDelegate" not in text  # only this step's checkpoint
        # the long instruction message is collapsed to its first lines
        assert "47 more lines (press o to open)" in text
        assert "Helper expert" not in text


async def test_o_opens_the_whole_readable_text_in_the_pager(continue_event):
    async with DetailApp().run_test(size=(120, 36)) as pilot:
        detail = await show(pilot, continue_event)
        detail.focus()
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PagerScreen), "the pager")
        text = pilot.app.screen.query_one(TextArea).text
        assert 'About "demo-helper":\nHelper expert' in text.replace("  ", "")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(pilot.app.screen, PagerScreen), "back")


async def test_raw_view_search_finds_keys_and_walks_matches(continue_event):
    async with DetailApp().run_test(size=(120, 36)) as pilot:
        detail = await show(pilot, continue_event)
        detail.focus()
        await pilot.press("r")
        assert detail.mode == "raw"
        tree = detail.json_view.tree
        assert tree.has_focus
        await pilot.press("slash", *"contextWindowUsage", "enter")
        view = detail.json_view
        await wait_for(pilot, lambda: view.matches, "search results")
        # the checkpoint's and the next checkpoint's fields (and the step's none)
        assert len(view.matches) == 2
        assert tree.cursor_node.data.path == ("checkpoint", "contextWindowUsage")
        await pilot.press("n")
        assert tree.cursor_node.data.path == ("nextCheckpoint", "contextWindowUsage")
        await pilot.press("N")
        assert tree.cursor_node.data.path == ("checkpoint", "contextWindowUsage")
        assert "match 1/2" in screen_text(view.query_one("#json-status"))
        # r again: back to the readable view
        await pilot.press("r")
        assert detail.mode == "readable"


async def test_search_reaches_values_beyond_the_first_page_of_a_long_list():
    items = [f"message {i}" for i in range(1000)]
    event = parse_event(_event("someNewEvent", items=items, needle_field="x"))
    async with DetailApp().run_test(size=(120, 36)) as pilot:
        detail = await show(pilot, event)
        await pilot.press("r")
        tree = detail.json_view.tree
        items_node = tree.node_for_path(("items",))
        items_node.expand()
        await wait_for(pilot, lambda: items_node.data.loaded > 0, "expansion")
        assert items_node.data.loaded == 200  # one page, not 1000 nodes
        assert "800 more (enter to show)" in items_node.children[-1].label.plain
        detail.json_view.search("message 777")
        await wait_for(pilot, lambda: tree.cursor_node.data.path == ("items", 777), "match")


async def test_long_strings_are_cut_in_the_tree_and_open_whole(continue_event):
    async with DetailApp().run_test(size=(120, 36)) as pilot:
        detail = await show(pilot, continue_event)
        await pilot.press("r")
        tree = detail.json_view.tree
        path = ("checkpoint", "messages", 0, "contents", 0, "text")
        node = tree.node_for_path(path)
        tree.reveal_node(node)
        label = node.label.plain
        whole = continue_event.checkpoint.messages[0].contents[0].text
        assert len(label) < 600
        assert f"({len(whole) - 500:,} more chars, press o to open)" in label
        tree.focus()
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PagerScreen), "the pager")
        assert pilot.app.screen.query_one(TextArea).text == whole


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "id": "e1",
        "expertKey": "tester",
        "timestamp": 1795299383126,
        "jobId": "j1",
        "runId": "r1",
        "stepNumber": 3,
        **fields,
    }


def _checkpoint(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "big",
        "jobId": "j1",
        "runId": "r1",
        "status": "completed",
        "stepNumber": 3,
        "expert": {"key": "tester", "name": "tester", "version": "1"},
        "messages": messages,
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
    }


def test_base64_is_recognised_by_field_name_or_by_its_alphabet():
    payload = base64.b64encode(b"\x89PNG" * 300_000).decode()
    assert blob_label("encodedData", payload, "image/png") == "<image/png, 1.2 MB>"
    assert blob_label("something", payload) == "<base64 data, 1.2 MB>"
    assert blob_label("text", "hello world " * 200) is None
    assert human_size(999) == "999 B"
    # payloads are not searched; their keys are
    assert find_matches({"encodedData": payload}, "UE5H") == []
    assert find_matches({"encodedData": payload}, "encoded") == [("encodedData",)]


async def test_inline_image_shows_as_mime_and_size_in_both_views():
    payload = base64.b64encode(b"\x89PNG" * 300_000).decode()
    image = {"type": "imageInlinePart", "id": "p1", "encodedData": payload, "mimeType": "image/png"}
    message = {"type": "userMessage", "id": "m1", "contents": [image]}
    event = parse_event(_event("startGeneration", messages=[message]))
    async with DetailApp().run_test(size=(120, 36)) as pilot:
        detail = await show(pilot, event)
        assert "<image/png, 1.2 MB>" in full_text(detail)
        await pilot.press("r")
        node = detail.json_view.tree.node_for_path(("messages", 0, "contents", 0, "encodedData"))
        assert node.label.plain == "encodedData: <image/png, 1.2 MB>"


async def test_a_ten_megabyte_checkpoint_loads_without_freezing_the_app():
    chunk = "lorem ipsum dolor sit amet " * 40  # ~1 KB
    messages = [
        {"type": "userMessage", "id": f"m{i}", "contents": [{"type": "textPart", "text": chunk}]}
        for i in range(10_000)
    ]
    raw = json.dumps(_event("completeRun", checkpoint=_checkpoint(messages), text="done"))
    assert len(raw) > 10_000_000
    event = parse_event(raw)
    async with DetailApp().run_test(size=(120, 36)) as pilot:
        detail = pilot.app.query_one(EventDetail)
        detail.focus()
        detail.show(event)
        # the formatting runs in a thread: the loading bar shows and keys are handled meanwhile
        assert detail.is_loading
        assert pilot.app.query_one(LoadingIndicator).display
        await pilot.press("r")
        assert detail.mode == "raw"
        await wait_for(pilot, lambda: not detail.is_loading, "the big checkpoint")
        await pilot.press("r")
        await pilot.pause()
        text = full_text(detail)
        # only the newest messages are rendered; the rest are one keypress away
        assert "9,940 earlier messages (press m to show more)" in text
        await pilot.press("m")
        await wait_for(pilot, lambda: not detail.is_loading, "more messages")
        await pilot.pause()
        assert "9,880 earlier messages" in full_text(detail)
        # the raw tree holds one page of the 10,000 messages
        first = detail.json_view.tree.node_for_path(("checkpoint", "messages", 0))
        assert isinstance(first.parent.data, JsonNode) and first.parent.data.loaded == 200


async def test_unreadable_record_shows_key_reason_and_preview(real_storage):
    record = await real_storage.read_event(CORRUPT_EVENT)
    assert isinstance(record, Unreadable)
    async with DetailApp().run_test(size=(120, 36)) as pilot:
        detail = await show(pilot, record)
        text = full_text(detail)
        assert "UNREADABLE" in text
        assert CORRUPT_EVENT in text
        assert "not valid JSON" in text
        assert '"delta":"is done."}}' in text
        await pilot.press("r")
        root = detail.json_view.tree.root
        assert [child.data.name for child in root.children] == [
            "unreadable",
            "key",
            "reason",
            "preview",
        ]


async def test_stream_event_shows_the_assembled_text_of_its_group():
    chunks = ["Let ", "me ", "think"]
    group = [
        parse_event(_event("streamReasoning", id=f"s{i}", delta=delta))
        for i, delta in enumerate(chunks)
    ]
    group.append(Unreadable(key="jobs/j1/runs/r1/event-1-3-streamReasoning.json", reason="bad"))
    async with DetailApp().run_test(size=(120, 36)) as pilot:
        detail = await show(pilot, group[1], run_events=group)
        text = full_text(detail)
        assert "Delta        'me '" in text
        assert "Assembled reasoning (3 chunks, 1 unreadable)" in text
        assert "Let me think" in text


async def test_secrets_are_masked_in_both_views():
    event = parse_event(
        _event(
            "someNewEvent",
            providerConfig={"providerName": "openai", "apiKey": "sk-live-123"},
            env={"HOME": "/root/secret-home"},
        )
    )
    async with DetailApp().run_test(size=(120, 36)) as pilot:
        detail = await show(pilot, event)
        assert "sk-live-123" not in full_text(detail)
        assert "********" in full_text(detail)
        await pilot.press("r")
        tree = detail.json_view.tree
        assert tree.node_for_path(("providerConfig", "apiKey")).label.plain == 'apiKey: "********"'
        assert tree.node_for_path(("env", "HOME")).label.plain == 'HOME: "********"'
        assert find_matches(tree.document, "sk-live") == []


async def test_editor_falls_back_with_a_notice_where_the_terminal_cannot_be_handed_over(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("VISUAL", "code --wait")
    assert editor_command() == ["code", "--wait"]
    made: list[str] = []
    real_write = pager._write_temp

    def tracking_write(text: str, suffix: str) -> str:
        made.append(real_write(text, suffix))
        return made[-1]

    monkeypatch.setattr(pager, "_write_temp", tracking_write)
    async with DetailApp().run_test(size=(120, 36)) as pilot:
        # the headless test driver cannot suspend, as over some remote terminals
        assert await open_in_editor(pilot.app, "hello", run=lambda cmd: None) is False
        await pilot.pause()
        assert any("$EDITOR" in str(n.message) for n in pilot.app._notifications)
    assert made and all(not __import__("os").path.exists(path) for path in made)


async def test_a_newly_shown_event_starts_at_the_top(continue_event, real_storage):
    complete = await real_storage.read_event(
        keys.event_key(COORDINATOR_JOB, HELPER_RUN, 1795299383400, 4, "completeRun")
    )
    async with DetailApp().run_test(size=(120, 20)) as pilot:
        detail = await show(pilot, continue_event)
        scroll = detail.query_one("#detail-readable")
        scroll.scroll_end(animate=False)
        await wait_for(pilot, lambda: scroll.scroll_y > 5, "scrolling down")
        await show(pilot, complete)  # also longer than the screen
        assert scroll.max_scroll_y > 5
        await wait_for(pilot, lambda: scroll.scroll_y == 0, "the top")
        assert "completeRun  step 4" in full_text(detail)
