"""Plain-text descriptions of events, times and token counts, shared by the CLI and the TUI.

Everything here returns plain strings (no rich, no textual): the TUI adds colour on top.

- :func:`gist` is the one-line description of an event (tool names and whether a result is
  an error, the delegate's expert and query, the error message, the completion text, stream
  deltas); :func:`event_details` is the multi-line form ``perstack-tui log`` prints.
- :func:`event_category` sorts an event into one of :data:`CATEGORIES`;
  :func:`type_category` does the same from a type name alone (no read needed).
- :func:`event_is_error` is true for error events *and* for tool results that are errors,
  which Perstack's own log shows as successes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .models import (
    STREAMING_EVENT_TYPES,
    AttemptCompletion,
    CallDelegate,
    CallInteractiveTool,
    CallTools,
    Checkpoint,
    CompleteRun,
    ContinueToNextStep,
    EventMeta,
    Message,
    Part,
    ResolveToolResults,
    Retry,
    RunEvent,
    StartRun,
    StopEvent,
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
    Usage,
)

if TYPE_CHECKING:
    from .catalog import JobSummary

CATEGORIES = (
    "error",
    "tool",
    "delegation",
    "stream",
    "checkpoint",
    "lifecycle",
    "unreadable",
    "other",
)

# Perstack's log presets (--errors, --tools, --delegations) filter on these types.
ERROR_EVENT_TYPES = frozenset({"stopRunByError", "retry"})
TOOL_EVENT_TYPES = frozenset({"callTools", "resolveToolResults", "callInteractiveTool"})
DELEGATION_EVENT_TYPES = frozenset({"callDelegate", "stopRunByDelegate"})

# Wider groups for categories (older and newer tool-related types included).
_TOOL_CATEGORY_TYPES = TOOL_EVENT_TYPES | {
    "finishToolCall",
    "resumeToolCalls",
    "finishAllToolCalls",
    "attemptCompletion",
    "callTool",
    "resolveToolResult",
}
_CHECKPOINT_CATEGORY_TYPES = frozenset({"continueToNextStep"})
_LIFECYCLE_TYPES = frozenset(
    {
        "startRun",
        "startGeneration",
        "completeRun",
        "stopRunByInteractiveTool",
        "stopRunByExceededMaxSteps",
    }
)

OK_MARK = "✓"
ERROR_MARK = "✗"

AnyEventLike = RunEvent | Unreadable | EventMeta


# --- categories and errors --------------------------------------------------------------


def type_category(event_type: str) -> str:
    """The category of an event type, from its name alone (works on listings, no read)."""
    if event_type == "unreadable":
        return "unreadable"
    if event_type in ERROR_EVENT_TYPES:
        return "error"
    if event_type in DELEGATION_EVENT_TYPES:
        return "delegation"
    if event_type in _TOOL_CATEGORY_TYPES:
        return "tool"
    if event_type in STREAMING_EVENT_TYPES:
        return "stream"
    if event_type in _CHECKPOINT_CATEGORY_TYPES:
        return "checkpoint"
    if event_type in _LIFECYCLE_TYPES:
        return "lifecycle"
    return "other"


def event_category(event: AnyEventLike) -> str:
    """One of :data:`CATEGORIES`; a tool result that is an error counts as ``"error"``."""
    if isinstance(event, Unreadable):
        return "unreadable"
    if isinstance(event, RunEvent) and event_is_error(event):
        return "error"
    return type_category(event.type)


def event_is_error(event: AnyEventLike) -> bool:
    """Whether an event reports an error: stopRunByError, retry, or a tool result error.

    An :class:`EventMeta` (no body read) is judged by its type only.
    """
    if isinstance(event, Unreadable):
        return False
    if event.type in ERROR_EVENT_TYPES:
        return True
    return any(result.is_error for result in tool_results(event))


def tool_results(event: AnyEventLike) -> list[ToolResult]:
    """The tool results an event carries (resolveToolResults, attemptCompletion, retry...)."""
    if isinstance(event, ResolveToolResults):
        return list(event.toolResults)
    if isinstance(event, AttemptCompletion):
        return [event.toolResult] if event.toolResult else []
    if isinstance(event, Retry):
        return list(event.toolResults or [])
    return []


def tool_calls(event: AnyEventLike) -> list[ToolCall]:
    """The tool calls an event makes (callTools, callDelegate, callInteractiveTool, retry)."""
    if isinstance(event, CallTools | CallDelegate):
        return list(event.toolCalls)
    if isinstance(event, CallInteractiveTool):
        return [event.toolCall] if event.toolCall else []
    if isinstance(event, Retry):
        return list(event.toolCalls or [])
    return []


def event_checkpoint(event: AnyEventLike) -> Checkpoint | None:
    """The checkpoint an event carries (``checkpoint``, or startRun's ``initialCheckpoint``)."""
    if isinstance(event, StartRun):
        return event.initialCheckpoint
    checkpoint = getattr(event, "checkpoint", None)
    return checkpoint if isinstance(checkpoint, Checkpoint) else None


# --- text of parts and messages ---------------------------------------------------------


def one_line(text: str, width: int | None = 80) -> str:
    """Whitespace collapsed to single spaces, cut to ``width`` characters with ``…``."""
    flat = " ".join(text.split())
    if width is not None and len(flat) > width:
        return flat[: max(width - 1, 0)] + "…"
    return flat


def parts_text(parts: Iterable[Part]) -> str:
    """The readable text of message parts (text, thinking, nested tool results), joined."""
    texts: list[str] = []
    for part in parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ThinkingPart):
            texts.append(part.thinking)
        elif isinstance(part, ToolResultPart):
            texts.append(parts_text(part.contents))
        elif isinstance(part, ToolCallPart):
            texts.append(f"{part.toolName}({_args_text(part.args)})")
        else:
            texts.append(f"[{part.type}]")
    return "\n".join(t for t in texts if t)


def message_text(message: Message) -> str:
    return parts_text(message.contents)


def tool_result_text(result: ToolResult) -> str:
    """A tool result's text; an ``{"error":..,"message":..}`` body becomes its message."""
    text = parts_text(result.result)
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except ValueError:
            return text
        if isinstance(value, dict) and "error" in value:
            message = value.get("message") or value.get("error")
            return str(message)
    return text


def _args_text(args: Any, width: int = 60) -> str:
    if args in (None, {}, []):
        return ""
    if isinstance(args, dict):
        inner = ", ".join(f"{k}={_scalar(v)}" for k, v in args.items())
    else:
        inner = _scalar(args)
    return one_line(inner, width)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def delegations(event: AnyEventLike) -> list[tuple[str, str]]:
    """(delegate expert, query) pairs of a callDelegate or stopRunByDelegate event.

    callDelegate names the delegate in the tool call (its tool name is the expert key, the
    query is ``args.query``); stopRunByDelegate's checkpoint has ``delegateTo``.
    """
    pairs: list[tuple[str, str]] = []
    if isinstance(event, CallDelegate):
        for call in event.toolCalls:
            args = call.args if isinstance(call.args, dict) else {}
            expert = str(args.get("expertKey") or args.get("expert") or call.toolName)
            pairs.append((expert, str(args.get("query", ""))))
    checkpoint = event_checkpoint(event)
    if not pairs and checkpoint is not None and checkpoint.delegateTo:
        pairs = [(d.expert.key, d.query) for d in checkpoint.delegateTo]
    return pairs


# --- gist and details -------------------------------------------------------------------


def gist(event: AnyEventLike, width: int | None = 120) -> str:
    """A one-line description of an event (plain text, cut to ``width``)."""
    return one_line(_gist(event), width)


def _gist(event: AnyEventLike) -> str:
    if isinstance(event, Unreadable):
        return f"unreadable: {event.reason}"
    if isinstance(event, EventMeta):
        return ""
    if isinstance(event, StartRun):
        query = _user_query(event.inputMessages)
        return f"{event.expertKey}: {query}" if query else event.expertKey
    if isinstance(event, CallDelegate):
        return "; ".join(f"→ {expert}: {query}" for expert, query in delegations(event))
    if isinstance(event, CallTools | CallInteractiveTool):
        return ", ".join(f"{c.toolName}({_args_text(c.args, 40)})" for c in tool_calls(event))
    if isinstance(event, ResolveToolResults | AttemptCompletion):
        # Errors first: in a narrow column they are what matters.
        results = sorted(tool_results(event), key=lambda r: not r.is_error)
        return " | ".join(_result_gist(r) for r in results)
    if isinstance(event, StopRunByError):
        return f"{event.error.name}: {event.error.message}"
    if isinstance(event, Retry):
        return f"retry: {event.reason}"
    if isinstance(event, CompleteRun):
        return event.text
    if isinstance(event, StreamDelta):
        return event.delta
    if isinstance(event, StreamBoundary):
        return event.text or ""
    if isinstance(event, StopEvent):
        if event.type == "stopRunByDelegate":
            return "; ".join(
                f"waiting on {expert}: {query}" for expert, query in delegations(event)
            )
        return event.checkpoint.status
    if isinstance(event, ContinueToNextStep):
        nxt = event.nextCheckpoint
        return f"→ step {nxt.stepNumber}" if nxt else f"step {event.checkpoint.stepNumber} done"
    extra = getattr(event, "model_extra", None) or {}
    for name in ("text", "reason", "message", "delta"):
        if isinstance(extra.get(name), str):
            return extra[name]
    return ""


def _result_gist(result: ToolResult) -> str:
    mark = ERROR_MARK if result.is_error else OK_MARK
    return f"{mark} {result.toolName}: {one_line(tool_result_text(result), 60)}"


def _user_query(messages: list[Message]) -> str:
    for message in messages:
        if message.type == "userMessage":
            return message_text(message)
    return ""


def event_details(event: AnyEventLike, *, verbose: bool = False) -> list[str]:
    """The detail lines ``log`` prints under an event's header (indented by the caller)."""
    if isinstance(event, Unreadable):
        return [f"Unreadable: {event.reason}", f"Key: {event.key}"]
    if isinstance(event, EventMeta):
        return []
    width = None if verbose else 80
    lines: list[str] = []
    if isinstance(event, StartRun):
        query = _user_query(event.inputMessages)
        if query:
            lines.append(f'Query: "{one_line(query, width)}"')
    elif isinstance(event, CallDelegate):
        for expert, query in delegations(event):
            lines.append(f"Delegate to: {expert}")
            if query:
                lines.append(f'  Query: "{one_line(query, width)}"')
    elif isinstance(event, CallTools | CallInteractiveTool):
        if verbose:
            for call in tool_calls(event):
                lines.append(f"[{call.skillName}] {call.toolName}")
                lines.append(f"  Args: {json.dumps(call.args, ensure_ascii=False)}")
        else:
            lines.append("Tools: " + ", ".join(c.toolName for c in tool_calls(event)))
    elif isinstance(event, ResolveToolResults | AttemptCompletion):
        for result in tool_results(event):
            mark = ERROR_MARK if result.is_error else OK_MARK
            label = " (error)" if result.is_error else ""
            text = one_line(tool_result_text(result), None if verbose else 60)
            lines.append(f"{mark} {result.toolName}{label}: {text}")
    elif isinstance(event, StopRunByError):
        lines.append(f"Error: {event.error.name}")
        lines.append(f"Message: {one_line(event.error.message, width)}")
        if event.error.isRetryable is not None:
            lines.append(f"Retryable: {str(event.error.isRetryable).lower()}")
    elif isinstance(event, Retry):
        lines.append(f"Reason: {one_line(event.reason, width)}")
    elif isinstance(event, CompleteRun):
        lines.append(f"Result: {one_line(event.text, width)}")
    elif isinstance(event, StopEvent) and event.type == "stopRunByDelegate":
        for expert, query in delegations(event):
            lines.append(f"Waiting on: {expert}" + (f' ("{one_line(query, 60)}")' if query else ""))
    else:
        text = _gist(event)
        if text:
            lines.append(one_line(text, width))
    return lines


# --- times and tokens -------------------------------------------------------------------


def format_timestamp(ms: int | None, *, utc: bool = True) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC by default, as Perstack's log prints it); ``-`` if unknown."""
    if ms is None:
        return "-"
    moment = datetime.fromtimestamp(ms / 1000, UTC if utc else None)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def format_time(ms: int | None, *, utc: bool = True) -> str:
    """``HH:MM:SS`` of a timestamp (UTC by default); ``-`` if unknown."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC if utc else None).strftime("%H:%M:%S")


def format_duration(ms: int | None) -> str:
    """A compact duration: ``850ms``, ``4.2s``, ``3m 05s``, ``2h 07m``, ``3d 4h``."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def format_relative(ms: int | None, now_ms: int | None = None) -> str:
    """How long ago: ``just now``, ``12s ago``, ``5m ago``, ``3h ago``, ``2d ago``, ``in 5m``."""
    if ms is None:
        return "-"
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    delta = (now_ms - ms) // 1000
    future = delta < 0
    delta = abs(delta)
    if delta < 5:
        return "just now"
    for size, unit in ((86400 * 365, "y"), (86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if delta >= size:
            amount = f"{delta // size}{unit}"
            return f"in {amount}" if future else f"{amount} ago"
    return "just now"  # unreachable: delta >= 5


def usage_text(usage: Usage, *, signed: bool = False) -> str:
    """``168 tokens (in 123, out 45)``, reasoning and cached input when set; ``signed`` for a
    delta between two checkpoints (``+168 tokens (in +123, out +45)``)."""

    def tokens(count: int) -> str:
        if not signed:
            return format_tokens(count)
        return ("+" if count >= 0 else "-") + format_tokens(abs(count))

    parts = [f"in {tokens(usage.inputTokens)}", f"out {tokens(usage.outputTokens)}"]
    if usage.reasoningTokens:
        parts.append(f"reasoning {tokens(usage.reasoningTokens)}")
    if usage.cachedInputTokens:
        parts.append(f"cached {tokens(usage.cachedInputTokens)}")
    return f"{tokens(usage.totalTokens)} tokens ({', '.join(parts)})"


def format_tokens(count: int | None) -> str:
    """A token count for humans: ``950``, ``12.3k``, ``4.5M``; ``-`` if unknown."""
    if count is None:
        return "-"
    if abs(count) < 1000:
        return str(count)
    if abs(count) < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.1f}M"


def job_json(summary: JobSummary) -> dict[str, Any]:
    """A job summary in Perstack's Job JSON shape (unknown optionals left out)."""
    data: dict[str, Any] = {
        "id": summary.id,
        "status": summary.status,
        "coordinatorExpertKey": summary.expert,
        "totalSteps": summary.steps,
    }
    if summary.max_steps is not None:
        data["maxSteps"] = summary.max_steps
    data["usage"] = summary.usage.to_json_dict()
    if summary.started_at is not None:
        data["startedAt"] = summary.started_at
    if summary.finished_at is not None:
        data["finishedAt"] = summary.finished_at
    return data
