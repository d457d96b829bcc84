"""An event in detail: a readable view (the conversation) and the raw JSON tree.

``EventDetail.show(event, run_events=...)`` formats in a thread, so a 10 MB checkpoint
never freezes the app; ``r`` toggles readable/raw, ``o`` opens the whole text in the pager
(``O`` in ``$EDITOR``), ``m`` shows more messages, ``/`` ``n`` ``N`` search the raw tree.

The ``render_*`` functions build rich Text only (no widgets) and are shared with the
checkpoint screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import ContentSwitcher, LoadingIndicator, Static

from ...describe import (
    ERROR_MARK,
    OK_MARK,
    event_checkpoint,
    format_timestamp,
    tool_calls,
    tool_results,
    usage_text,
)
from ...models import (
    BinaryPart,
    CallDelegate,
    CallInteractiveTool,
    CallTools,
    Checkpoint,
    CompleteRun,
    ContinueToNextStep,
    FinishAllToolCalls,
    FinishToolCall,
    GenericEvent,
    InlinePart,
    Message,
    Part,
    ResumeToolCalls,
    Retry,
    RunEvent,
    StartGeneration,
    StartRun,
    StopRunByError,
    StreamBoundary,
    StreamDelta,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolCallPart,
    ToolResult,
    ToolResultPart,
    Unreadable,
    UrlPart,
    Usage,
    mask_secrets,
    part_is_error,
)
from ..pager import open_in_editor, open_in_pager
from .json_view import JsonView, blob_label, cut_text, more_chars_note

#: messages rendered at first; ``m`` shows this many more (the newest are kept)
MAX_MESSAGES = 60
#: lines of an instruction message shown before "… N more lines"
INSTRUCTION_LINES = 3

_ROLE_STYLE = {
    "instructionMessage": ("instruction", "bold magenta"),
    "userMessage": ("user", "bold green"),
    "expertMessage": ("expert", "bold cyan"),
    "toolMessage": ("tool", "bold yellow"),
}
_STATUS_STYLE = {
    "completed": "green",
    "proceeding": "cyan",
    "init": "cyan",
    "stoppedByError": "bold red",
    "stoppedByDelegate": "yellow",
    "stoppedByInteractiveTool": "yellow",
    "stoppedByExceededMaxSteps": "red",
}


# --- text pieces ------------------------------------------------------------------------


def _long(text: str, style: str, *, full: bool, indent: str = "  ", lines: int = 0) -> Text:
    """A long text, indented; cut (by lines when ``lines``, else by chars) unless ``full``."""
    rest_note = ""
    if not full and lines:
        split = text.split("\n")
        if len(split) > lines:
            text = "\n".join(split[:lines])
            rest_note = f"… {len(split) - lines:,} more lines (press o to open)"
    if not full:
        text, rest = cut_text(text)
        if rest:
            rest_note = more_chars_note(rest)
    out = Text(indent + text.replace("\n", "\n" + indent), style)
    if rest_note:
        out.append("\n" + indent + rest_note, "italic dim")
    return out


def _json_text(value: Any) -> str:
    return json.dumps(mask_secrets(value), ensure_ascii=False)


def _field(name: str, value: str | Text, style: str = "") -> Text:
    line = Text(f"{name:<13}", "bold")
    line.append(value if isinstance(value, Text) else Text(value, style))
    return line


def _heading(text: str) -> Text:
    return Text(f"── {text} ", "bold underline")


# --- messages and parts -----------------------------------------------------------------


def render_part(part: Part, *, full: bool, indent: str = "  ") -> Text:
    """One message part: text, thinking, a tool call with its args, a tool result, a payload."""
    if isinstance(part, TextPart):
        return _long(part.text, "", full=full, indent=indent)
    if isinstance(part, ThinkingPart):
        out = Text(indent + "thinking", "italic magenta")
        out.append("\n")
        out.append(_long(part.thinking, "italic dim", full=full, indent=indent + "  "))
        return out
    if isinstance(part, ToolCallPart):
        return _tool_call_line(part.toolName, part.args, part.toolCallId, full=full, indent=indent)
    if isinstance(part, ToolResultPart):
        error = part_is_error(part)
        head = Text(indent)
        head.append(f"{ERROR_MARK if error else OK_MARK} ", "bold red" if error else "green")
        head.append(part.toolName, "bold")
        if error:
            head.append(" (error)", "bold red")
        head.append(f"  {part.toolCallId}", "dim")
        for inner in part.contents:
            head.append("\n")
            head.append(render_part(inner, full=full, indent=indent + "  "))
        return head
    if isinstance(part, InlinePart | BinaryPart):
        data = part.encodedData if isinstance(part, InlinePart) else part.data
        size = blob_label("data", data, part.mimeType) if isinstance(data, str) else None
        return Text(indent + (size or f"<{part.mimeType or part.type}>"), "italic yellow")
    if isinstance(part, UrlPart):
        return Text(f"{indent}<{part.mimeType or part.type}> {part.url}", "italic yellow")
    extra = mask_secrets(part.model_extra or {})
    return Text(f"{indent}[{part.type}] {_cut_json(extra, full)}", "dim")


def _cut_json(value: Any, full: bool) -> str:
    text = json.dumps(value, ensure_ascii=False)
    if full:
        return text
    head, rest = cut_text(text)
    return head + (" " + more_chars_note(rest) if rest else "")


def _tool_call_line(name: str, args: Any, call_id: str, *, full: bool, indent: str) -> Text:
    line = Text(indent + "→ ", "bold blue")
    line.append(name, "bold")
    line.append(" ")
    line.append(_cut_json(mask_secrets(args) if args is not None else {}, full), "blue")
    line.append(f"  {call_id}", "dim")
    return line


def render_message(message: Message, *, full: bool = False) -> Text:
    """A message as a conversation turn: role, then its parts (instructions collapsed)."""
    role, style = _ROLE_STYLE.get(message.type, (message.type, "bold"))
    out = Text("▌ ", style)
    out.append(role, style)
    if message.cache:
        out.append("  cached", "dim")
    for part in message.contents:
        out.append("\n")
        if message.type == "instructionMessage" and isinstance(part, TextPart):
            out.append(_long(part.text, "dim", full=full, lines=INSTRUCTION_LINES))
        else:
            out.append(render_part(part, full=full))
    return out


def render_messages(
    messages: list[Message], *, full: bool = False, limit: int = MAX_MESSAGES
) -> list[Text]:
    """A conversation; past ``limit`` only the newest messages (``m`` shows more)."""
    blocks: list[Text] = []
    hidden = 0 if full else max(0, len(messages) - limit)
    if hidden:
        blocks.append(Text(f"… {hidden:,} earlier messages (press m to show more)", "italic dim"))
    blocks.extend(render_message(m, full=full) for m in messages[hidden:])
    return blocks


def render_tool_result(result: ToolResult, *, full: bool = False) -> Text:
    error = result.is_error
    out = Text(f"{ERROR_MARK if error else OK_MARK} ", "bold red" if error else "green")
    out.append(f"{result.skillName}/" if result.skillName else "", "dim")
    out.append(result.toolName, "bold")
    if error:
        out.append(" (error)", "bold red")
    out.append(f"  {result.id}", "dim")
    for part in result.result:
        out.append("\n")
        out.append(render_part(part, full=full))
    return out


def render_tool_call(call: ToolCall, *, full: bool = False) -> Text:
    prefix = f"{call.skillName}/" if call.skillName else ""
    return _tool_call_line(prefix + call.toolName, call.args, call.id, full=full, indent="")


# --- checkpoints ------------------------------------------------------------------------


def render_checkpoint_summary(checkpoint: Checkpoint) -> list[Text]:
    """Status, step, expert, usage, context window, delegations, error, pending calls."""
    lines = [
        _field(
            "Checkpoint",
            Text.assemble(
                (f"step {checkpoint.stepNumber}  ", "bold"),
                (checkpoint.status, _STATUS_STYLE.get(checkpoint.status, "")),
                (f"  {checkpoint.id}", "dim"),
            ),
        )
    ]
    if checkpoint.expert is not None:
        expert = checkpoint.expert.key
        if checkpoint.expert.version:
            expert += f"@{checkpoint.expert.version}"
        lines.append(_field("Expert", expert, "cyan"))
    lines.append(_field("Run", checkpoint.runId, "dim"))
    lines.append(_field("Usage", usage_text(checkpoint.usage)))
    if checkpoint.contextWindowUsage is not None:
        window = f"{checkpoint.contextWindowUsage * 100:.2f}%"
        if checkpoint.contextWindow:
            window += f" of {checkpoint.contextWindow:,} tokens"
        lines.append(_field("Context", window))
    for delegation in checkpoint.delegateTo or []:
        lines.append(
            _field(
                "Delegates to",
                Text.assemble(
                    (f"→ {delegation.expert.key}", "bold yellow"),
                    f": {delegation.query}  ",
                    (delegation.toolCallId, "dim"),
                ),
            )
        )
    if checkpoint.delegatedBy is not None:
        by = checkpoint.delegatedBy
        lines.append(
            _field(
                "Delegated by",
                Text.assemble(
                    (by.expert.key, "bold yellow"),
                    (f"  run {by.runId}  checkpoint {by.checkpointId}  {by.toolCallId}", "dim"),
                ),
            )
        )
    if checkpoint.error is not None:
        lines.append(_error_line(checkpoint.error))
    for call in checkpoint.pendingToolCalls or []:
        lines.append(_field("Pending", render_tool_call(call)))
    for result in checkpoint.partialToolResults or []:
        lines.append(_field("Partial", render_tool_result(result)))
    if checkpoint.retryCount:
        lines.append(_field("Retries", str(checkpoint.retryCount), "yellow"))
    return lines


def _error_line(error: Any) -> Text:
    detail = f"{error.name}: {error.message}"
    if error.statusCode is not None:
        detail += f" (HTTP {error.statusCode})"
    if error.isRetryable is not None:
        detail += "  retryable" if error.isRetryable else "  not retryable"
    return _field("Error", detail, "bold red")


def render_checkpoint(
    checkpoint: Checkpoint, *, full: bool = False, limit: int = MAX_MESSAGES
) -> list[Text]:
    """A checkpoint's summary, then its messages as a conversation."""
    blocks = render_checkpoint_summary(checkpoint)
    blocks.append(_heading(f"Conversation ({len(checkpoint.messages)} messages)"))
    blocks.extend(render_messages(checkpoint.messages, full=full, limit=limit))
    return blocks


# --- events -----------------------------------------------------------------------------


def render_unreadable(record: Unreadable) -> list[Text]:
    """An unreadable record, clearly marked: key, reason, and what could be read of it."""
    blocks = [
        Text(" UNREADABLE ", "bold white on red"),
        _field("Key", record.key or "(unknown)"),
        _field("Reason", record.reason, "red"),
    ]
    if record.preview:
        blocks.append(_heading("Raw preview"))
        blocks.append(Text(record.preview, "dim"))
    return blocks


def _event_header(event: RunEvent) -> list[Text]:
    title = Text(event.type, "bold")
    title.append(f"  step {event.stepNumber}  ", "")
    title.append(format_timestamp(event.timestamp), "dim")
    return [
        title,
        _field("Expert", event.expertKey or "-", "cyan"),
        _field("Run", event.runId, "dim"),
        _field("Event", event.id or "-", "dim"),
    ]


def _stream_text(event: StreamDelta | StreamBoundary, run_events: list[Any] | None) -> Text:
    """The streamed text so far: a complete* event's text, else the deltas joined."""
    kind = "Reasoning" if "Reasoning" in event.type else "RunResult"
    chunks: list[str] = []
    complete: str | None = None
    skipped: list[Unreadable] = []
    for other in run_events or [event]:
        if isinstance(other, Unreadable):
            skipped.append(other)
        elif isinstance(other, StreamDelta) and other.type.endswith(kind):
            chunks.append(other.delta)
        elif isinstance(other, StreamBoundary) and other.type.endswith(kind) and other.text:
            complete = other.text
    text = complete if complete is not None else "".join(chunks)
    note = f"{len(chunks)} chunks" + (f", {len(skipped)} unreadable" if skipped else "")
    label = "reasoning" if kind == "Reasoning" else "run result"
    out = Text(f"Assembled {label} ({note})\n", "bold")
    for record in skipped:  # which chunk is missing from the text, and why
        out.append("unreadable: ", "bold red")
        out.append(f"{record.key or '(unknown)'}: {record.reason}\n", "red")
    out.append(text or "(empty)")
    return out


def render_event(
    event: RunEvent | Unreadable | None,
    run_events: list[Any] | None = None,
    *,
    full: bool = False,
    limit: int = MAX_MESSAGES,
) -> list[Text]:
    """The readable view of an event as blocks of rich Text (``full``: nothing cut)."""
    if event is None:
        return [Text("No event selected", "dim")]
    if isinstance(event, Unreadable):
        return render_unreadable(event)
    blocks = _event_header(event)
    if isinstance(event, StopRunByError):
        blocks.append(_error_line(event.error))
    if isinstance(event, CompleteRun):
        blocks.append(_heading("Result"))
        blocks.append(_long(event.text, "", full=full))
    if isinstance(event, Retry):
        blocks.append(_field("Reason", event.reason, "yellow"))
    if isinstance(event, StreamDelta | StreamBoundary):
        if isinstance(event, StreamDelta):
            blocks.append(_field("Delta", repr(event.delta)))
        blocks.append(_stream_text(event, run_events))
    calls = tool_calls(event)
    if calls:
        blocks.append(_heading("Tool calls"))
        blocks.extend(render_tool_call(c, full=full) for c in calls)
    results = tool_results(event)
    if results:
        blocks.append(_heading("Tool results"))
        blocks.extend(render_tool_result(r, full=full) for r in results)
    if isinstance(event, ResumeToolCalls):
        blocks.append(_heading("Pending tool calls"))
        blocks.extend(render_tool_call(c, full=full) for c in event.pendingToolCalls)
        blocks.append(_heading("Partial results"))
        blocks.extend(render_tool_result(r, full=full) for r in event.partialToolResults)
    messages = _event_messages(event)
    if messages is not None:
        title, items = messages
        blocks.append(_heading(f"{title} ({len(items)})"))
        blocks.extend(render_messages(items, full=full, limit=limit))
    usage = getattr(event, "usage", None)
    if isinstance(usage, Usage) and usage.totalTokens:
        blocks.append(_field("Usage", usage_text(usage)))
    checkpoint = event_checkpoint(event)
    if checkpoint is not None:
        blocks.append(_heading("Checkpoint"))
        blocks.extend(render_checkpoint(checkpoint, full=full, limit=limit))
    if isinstance(event, ContinueToNextStep) and event.nextCheckpoint is not None:
        nxt = event.nextCheckpoint
        blocks.append(_field("Next", f"step {nxt.stepNumber}  {nxt.status}  {nxt.id}", "dim"))
    if isinstance(event, GenericEvent):
        extra = mask_secrets(event.model_extra or {})
        if extra:
            blocks.append(_heading("Fields"))
            blocks.append(_long(json.dumps(extra, indent=2, ensure_ascii=False), "", full=full))
    return blocks


def _event_messages(event: RunEvent) -> tuple[str, list[Message]] | None:
    if isinstance(event, StartRun):
        return "Input messages", event.inputMessages
    if isinstance(event, StartGeneration):
        return "Messages", event.messages
    if isinstance(event, CallTools | CallDelegate | CallInteractiveTool):
        return ("New message", [event.newMessage]) if event.newMessage else None
    if isinstance(event, Retry | FinishToolCall | FinishAllToolCalls):
        return "New messages", event.newMessages
    return None


def raw_json(event: RunEvent | Unreadable | Checkpoint) -> Any:
    """What the raw view shows: the record as stored, secrets masked."""
    if isinstance(event, Unreadable):
        return {"unreadable": True, "key": event.key, "reason": event.reason,
                "preview": event.preview}  # fmt: skip
    return mask_secrets(event.to_json_dict())


def blocks_text(blocks: list[Text]) -> str:
    """The plain text of rendered blocks (what the pager and $EDITOR get)."""
    return "\n".join(block.plain for block in blocks)


@dataclass
class _Prepared:
    blocks: list[Text]
    raw: Any
    title: str


def _prepare(event: RunEvent | Unreadable, run_events: list[Any] | None, limit: int) -> _Prepared:
    title = event.type if isinstance(event, Unreadable) else f"{event.type} step {event.stepNumber}"
    try:
        return _Prepared(render_event(event, run_events, limit=limit), raw_json(event), title)
    except Exception as error:  # a shape nobody foresaw must not take the app down
        return _Prepared(render_failure(error), {"error": repr(error)}, title)


def render_failure(error: Exception) -> list[Text]:
    """What the views show when formatting a record failed (instead of crashing the app)."""
    return [
        Text(" CANNOT DISPLAY ", "bold white on red"),
        _field("Reason", f"{type(error).__name__}: {error}", "red"),
        Text("The raw view (r) may still show it.", "dim"),
    ]


# --- the widget -------------------------------------------------------------------------


class EventDetail(Vertical):
    """An event's readable view and raw JSON tree (``r`` toggles), formatted off the UI loop."""

    DEFAULT_CSS = """
    EventDetail { height: 1fr; layers: base loading; }
    EventDetail > #detail-loading {
        layer: loading; position: absolute; offset: 0 0; width: 100%; height: 1; display: none;
    }
    EventDetail.-loading > #detail-loading { display: block; }
    EventDetail > ContentSwitcher { height: 1fr; }
    EventDetail #detail-readable { height: 1fr; padding: 0 1; }
    EventDetail #detail-readable-text { width: 1fr; }
    """

    BINDINGS = [
        Binding("r", "toggle_raw", "raw/readable", tooltip="raw JSON / readable"),
        Binding("o", "open", "open", tooltip="open the text in a pager (raw: the selected value)"),
        Binding("O", "open_in_editor", "open in $EDITOR", show=False),
        Binding(
            "m",
            "more_messages",
            "more messages",
            show=False,
            tooltip="show more of the conversation",
        ),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.event: RunEvent | Unreadable | None = None
        self.run_events: list[Any] | None = None
        self.mode = "readable"
        self.is_loading = False
        self.message_limit = MAX_MESSAGES
        self._title = ""

    def compose(self) -> ComposeResult:
        yield LoadingIndicator(id="detail-loading")
        with ContentSwitcher(initial="detail-readable"):
            with VerticalScroll(id="detail-readable", can_focus=True):
                yield Static(Text("No event selected", "dim"), id="detail-readable-text")
            yield JsonView(id="detail-raw")

    @property
    def readable_text(self) -> Static:
        return self.query_one("#detail-readable-text", Static)

    @property
    def json_view(self) -> JsonView:
        return self.query_one(JsonView)

    def focus(self, scroll_visible: bool = True) -> EventDetail:
        """Focus the view on show (the readable scroll area or the raw tree)."""
        if self.mode == "raw":
            self.json_view.tree.focus(scroll_visible)
        else:
            self.query_one("#detail-readable").focus(scroll_visible)
        return self

    def show(
        self, event: RunEvent | Unreadable | None, *, run_events: list[Any] | None = None
    ) -> None:
        """Show ``event`` (None clears); ``run_events``: its streaming group, to assemble text."""
        self.event, self.run_events = event, run_events
        self.message_limit = MAX_MESSAGES
        if not self.is_mounted:
            return  # on_mount shows it
        if event is None:
            self.workers.cancel_group(self, "event-detail")
            self._set_loading(False)
            self.readable_text.update(Text("No event selected", "dim"))
            self.json_view.load(None, "no event")
            return
        # the previous event stays up under the loading bar: no flicker while walking events
        self._set_loading(True)
        self._load(event, run_events, self.message_limit)

    def on_mount(self) -> None:
        if self.event is not None:
            self.show(self.event, run_events=self.run_events)

    def _set_loading(self, loading: bool) -> None:
        self.is_loading = loading
        self.set_class(loading, "-loading")

    @work(exclusive=True, group="event-detail")
    async def _load(
        self, event: RunEvent | Unreadable, run_events: list[Any] | None, limit: int
    ) -> None:
        self._set_loading(True)
        prepared = await asyncio.to_thread(_prepare, event, run_events, limit)
        with contextlib.suppress(NoMatches):  # the view was taken down (screen closed) meanwhile
            self._title = prepared.title
            self.readable_text.update(Group(*prepared.blocks))
            self.query_one("#detail-readable", VerticalScroll).scroll_home(animate=False)
            self.json_view.load(prepared.raw, prepared.title)
            self._set_loading(False)

    def action_toggle_raw(self) -> None:
        had_focus = self.has_focus_within
        self.mode = "raw" if self.mode == "readable" else "readable"
        self.query_one(ContentSwitcher).current = f"detail-{self.mode}"
        if had_focus:
            self.focus()

    def action_more_messages(self) -> None:
        if self.event is not None and self.mode == "readable":
            self.message_limit += MAX_MESSAGES
            self._load(self.event, self.run_events, self.message_limit)

    async def _full_text(self) -> str | None:
        if self.event is None:
            return None
        blocks = await asyncio.to_thread(render_event, self.event, self.run_events, full=True)
        return blocks_text(blocks)

    async def action_open(self) -> None:
        if self.mode == "raw":
            await self.json_view.action_open()
            return
        text = await self._full_text()
        if text is not None:
            open_in_pager(self.app, self._title or "event", text)

    async def action_open_in_editor(self) -> None:
        if self.mode == "raw":
            await self.json_view.action_open_in_editor()
            return
        text = await self._full_text()
        if text is not None:
            await open_in_editor(self.app, text)
