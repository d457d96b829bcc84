"""What changed from one checkpoint to the next: messages, status, usage, delegations.

Pure logic (no textual, no rich) so the TUI's checkpoint screen and any headless command
describe a step the same way. Checkpoints embed the whole conversation and a job-wide
usage total, so a diff is what a user actually wants to read about a step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .describe import one_line, usage_text
from .models import Checkpoint, DelegateTo, Message, ToolResultPart, Usage


@dataclass(frozen=True)
class CheckpointDiff:
    """The changes from ``previous`` to ``current`` (``previous`` is None for the first)."""

    previous: Checkpoint | None
    current: Checkpoint
    #: messages of ``current`` that ``previous`` did not have
    new_messages: list[Message] = field(default_factory=list)
    #: whether ``current`` continues ``previous``'s conversation (same run, same messages)
    same_conversation: bool = True
    usage_delta: Usage = field(default_factory=Usage)
    #: change of the context window usage (0..1), None when either side lacks it
    context_window_usage_delta: float | None = None
    delegations_added: list[DelegateTo] = field(default_factory=list)
    delegations_resolved: list[DelegateTo] = field(default_factory=list)

    @property
    def status_changed(self) -> bool:
        return self.previous is not None and self.previous.status != self.current.status

    @property
    def expert_changed(self) -> bool:
        before = self.previous.expert.key if self.previous and self.previous.expert else None
        after = self.current.expert.key if self.current.expert else None
        return self.previous is not None and before != after


def diff_checkpoints(previous: Checkpoint | None, current: Checkpoint) -> CheckpointDiff:
    """Compare two checkpoints of a job (``previous`` is the one of the step before).

    New messages are found by message id where every message has one, else by position
    (a checkpoint's messages only ever grow within a run). A delegation is *added* when
    ``current.delegateTo`` names a tool call ``previous`` did not and ``current`` holds no result
    for; it is *resolved* when a delegation has a tool result in ``current``'s messages, or is
    no longer listed by the same run (a delegate's own checkpoint resolves nothing).
    """
    if previous is None:
        return CheckpointDiff(
            previous=None,
            current=current,
            new_messages=list(current.messages),
            usage_delta=current.usage,
            delegations_added=list(current.delegateTo or []),
        )
    new_messages, same_conversation = _new_messages(previous, current)
    before = {d.toolCallId for d in previous.delegateTo or []}
    after = {d.toolCallId for d in current.delegateTo or []}
    answered = _tool_result_ids(current.messages)
    same_run = previous.runId == current.runId
    resolved = [
        d
        for d in previous.delegateTo or []
        if d.toolCallId in answered or (same_run and d.toolCallId not in after)
    ]
    # A resumed caller's checkpoint may still list a delegation its messages already answer
    # (the caller's previous checkpoint was the delegate's): that delegation is resolved.
    resolved += [
        d
        for d in current.delegateTo or []
        if d.toolCallId in answered and d.toolCallId not in before
    ]
    window = None
    if previous.contextWindowUsage is not None and current.contextWindowUsage is not None:
        window = current.contextWindowUsage - previous.contextWindowUsage
    return CheckpointDiff(
        previous=previous,
        current=current,
        new_messages=new_messages,
        same_conversation=same_conversation,
        usage_delta=current.usage - previous.usage,
        context_window_usage_delta=window,
        delegations_added=[
            d
            for d in current.delegateTo or []
            if d.toolCallId not in before and d.toolCallId not in answered
        ],
        delegations_resolved=resolved,
    )


def _new_messages(previous: Checkpoint, current: Checkpoint) -> tuple[list[Message], bool]:
    old, new = previous.messages, current.messages
    if all(m.id for m in old) and all(m.id for m in new):
        known = {m.id for m in old}
        fresh = [m for m in new if m.id not in known]
        continues = previous.runId == current.runId and len(new) - len(fresh) == len(old)
        return fresh, continues
    continues = previous.runId == current.runId and len(new) >= len(old)
    return (list(new[len(old) :]) if continues else list(new)), continues


def _tool_result_ids(messages: list[Message]) -> set[str]:
    return {
        part.toolCallId
        for message in messages
        for part in message.contents
        if isinstance(part, ToolResultPart)
    }


def usage_delta_text(delta: Usage) -> str:
    """``+168 tokens (in +123, out +45)``: the usage a step added, reasoning/cache when set."""
    return usage_text(delta, signed=True)


def diff_lines(diff: CheckpointDiff) -> list[str]:
    """The diff as plain text lines, the headline facts first."""
    current, previous = diff.current, diff.previous
    if previous is None:
        lines = [f"First checkpoint of the job (step {current.stepNumber}, {current.status})"]
    else:
        lines = [f"Step {previous.stepNumber} → {current.stepNumber}"]
        if diff.status_changed:
            lines.append(f"Status: {previous.status} → {current.status}")
        else:
            lines.append(f"Status: {current.status} (unchanged)")
        if diff.expert_changed or previous.runId != current.runId:
            expert = current.expert.key if current.expert else "?"
            lines.append(f"Other run: {current.runId} (expert {expert})")
    lines.append(f"Usage: {usage_delta_text(diff.usage_delta)}")
    if diff.context_window_usage_delta is not None:
        lines.append(f"Context window: {diff.context_window_usage_delta * 100:+.2f} points")
    for delegation in diff.delegations_added:
        lines.append(f"Delegation added: → {delegation.expert.key}: {one_line(delegation.query)}")
    for delegation in diff.delegations_resolved:
        lines.append(f"Delegation resolved: {delegation.expert.key} ({delegation.toolCallId})")
    if not diff.same_conversation and previous is not None:
        lines.append(
            f"Messages: another conversation, {len(diff.new_messages)} not in the previous"
        )
    else:
        lines.append(f"New messages: {len(diff.new_messages)}")
    return lines
