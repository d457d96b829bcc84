"""Checkpoint diffs on the real fixture job: step 1 → 2 (delegation) → 4 (the delegate)."""

from __future__ import annotations

import pytest

from perstack_tui import keys
from perstack_tui.diff import diff_checkpoints, diff_lines, usage_delta_text
from perstack_tui.models import (
    Checkpoint,
    DelegateTo,
    ExpertRef,
    Message,
    TextPart,
    ToolResultPart,
    Usage,
)
from perstack_tui.storage.filesystem import FileSystemStorage
from tests.conftest import COORDINATOR_JOB

STEP_1_EVENT = keys.event_key(
    COORDINATOR_JOB, "r3k7c4urwywzgewayor7pkse", 1795299383126, 1, "continueToNextStep"
)
STEP_2 = "pqddsbnfwoeknpfn5jdqyfa9"
STEP_4 = "lrsre0h1ib0jsupajkyioufw"


@pytest.fixture
async def checkpoints(real_storage: FileSystemStorage) -> list[Checkpoint]:
    event = await real_storage.read_event(STEP_1_EVENT)
    step_2 = await real_storage.read_checkpoint(COORDINATOR_JOB, STEP_2)
    step_4 = await real_storage.read_checkpoint(COORDINATOR_JOB, STEP_4)
    assert isinstance(step_2, Checkpoint) and isinstance(step_4, Checkpoint)
    return [event.checkpoint, step_2, step_4]


async def test_diff_shows_delegation_added_usage_delta_and_status(checkpoints):
    step_1, step_2, _ = checkpoints
    diff = diff_checkpoints(step_1, step_2)
    assert diff.status_changed
    assert [d.expert.key for d in diff.delegations_added] == ["demo-helper"]
    assert diff.delegations_resolved == []
    assert diff.usage_delta.totalTokens == 336 - 168
    assert diff.same_conversation
    assert [m.type for m in diff.new_messages] == ["expertMessage"]
    lines = diff_lines(diff)
    assert "Status: proceeding → stoppedByDelegate" in lines
    assert any(line.startswith("Delegation added: → demo-helper: Summarize") for line in lines)
    assert "Usage: +168 tokens (in +123, out +45)" in lines


async def test_delegates_own_checkpoint_is_another_conversation_not_a_resolution(checkpoints):
    _, step_2, step_4 = checkpoints
    diff = diff_checkpoints(step_2, step_4)
    assert not diff.same_conversation
    assert diff.expert_changed
    assert diff.delegations_resolved == []
    assert diff.usage_delta.totalTokens == 840 - 336


def _checkpoint(step: int, messages: list[str], **fields) -> Checkpoint:
    return Checkpoint(
        id=f"c{step}",
        jobId="j",
        runId=fields.pop("runId", "r"),
        status=fields.pop("status", "proceeding"),
        stepNumber=step,
        messages=[Message(type="userMessage", contents=[TextPart(text=text)]) for text in messages],
        **fields,
    )


def test_delegation_resolved_when_same_run_no_longer_waits_on_it():
    waiting = DelegateTo(expert=ExpertRef(key="helper"), toolCallId="t1", toolName="helper")
    before = _checkpoint(2, ["a"], status="stoppedByDelegate", delegateTo=[waiting])
    after = _checkpoint(3, ["a", "b"], usage=Usage(totalTokens=10, inputTokens=10))
    diff = diff_checkpoints(before, after)
    assert [d.toolCallId for d in diff.delegations_resolved] == ["t1"]
    # messages without ids are compared by position
    assert [m.contents[0].text for m in diff.new_messages] == ["b"]
    assert "Delegation resolved: helper (t1)" in diff_lines(diff)


def test_first_checkpoint_diff_counts_everything_as_new():
    first = _checkpoint(1, ["a", "b"], usage=Usage(totalTokens=5))
    diff = diff_checkpoints(None, first)
    assert len(diff.new_messages) == 2
    assert diff.usage_delta.totalTokens == 5
    assert diff_lines(diff)[0].startswith("First checkpoint of the job")


def test_usage_delta_text_signs_and_units():
    assert usage_delta_text(Usage(totalTokens=-1500, inputTokens=-1500)) == (
        "-1.5k tokens (in -1.5k, out +0)"
    )


def test_a_resumed_caller_still_listing_an_answered_delegation_resolves_it():
    # The caller's previous checkpoint is the delegate's (another run, no delegateTo); the
    # resumed caller's checkpoint still lists the delegation but holds its tool result.
    waiting = DelegateTo(expert=ExpertRef(key="helper"), toolCallId="t1", toolName="helper")
    delegate = _checkpoint(5, ["q"], runId="run-helper")
    answer = Message(
        type="toolMessage",
        contents=[ToolResultPart(toolCallId="t1", toolName="helper", contents=[])],
    )
    resumed = _checkpoint(6, ["a"], runId="run-caller", delegateTo=[waiting])
    resumed.messages.append(answer)
    diff = diff_checkpoints(delegate, resumed)
    assert diff.delegations_added == []
    assert [d.toolCallId for d in diff.delegations_resolved] == ["t1"]
    assert not any(line.startswith("Delegation added") for line in diff_lines(diff))
