"""Step ranges, field conditions and presets behave as Perstack's log documents them."""

from __future__ import annotations

import pytest

from perstack_tui.filters import (
    EventFilter,
    FilterError,
    StepRange,
    build_filter,
    parse_condition,
    parse_step_range,
    with_context,
)
from perstack_tui.models import EventMeta, Unreadable, parse_event


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("5", [5], [4, 6]),
        (">5", [6, 100], [5, 4]),
        (">=5", [5, 6], [4]),
        ("<5", [0, 4], [5, 6]),
        ("<=5", [5, 1], [6]),
        ("1-10", [1, 5, 10], [0, 11]),
        (" 2 - 3 ", [2, 3], [1, 4]),
    ],
)
def test_step_range_keeps_exactly_its_steps(text, inside, outside):
    steps = parse_step_range(text)
    assert all(s in steps for s in inside)
    assert not any(s in steps for s in outside)


@pytest.mark.parametrize("text", ["", "abc", "=5", "5-", "-5", "10-1", ">>5", "1.5"])
def test_step_range_rejects_what_it_cannot_read(text):
    with pytest.raises(FilterError):
        parse_step_range(text)


def test_unbounded_step_range_contains_everything():
    assert 10**9 in StepRange()


CALL_TOOLS = {
    "type": "callTools",
    "id": "e1",
    "expertKey": "coord",
    "timestamp": 1,
    "jobId": "j",
    "runId": "r",
    "stepNumber": 3,
    "toolCalls": [
        {"id": "c1", "skillName": "@perstack/base", "toolName": "readTextFile", "args": {"n": 2}},
        {"id": "c2", "skillName": "@perstack/base", "toolName": "think", "args": {"n": 7}},
    ],
    "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('.type == "callTools"', True),
        (".type == 'callTools'", True),
        (".type == callTools", True),
        ('.type != "callTools"', False),
        (".stepNumber == 3", True),
        (".stepNumber > 2", True),
        (".stepNumber >= 4", False),
        (".stepNumber < 4", True),
        (".stepNumber <= 2", False),
        ('.toolCalls[].toolName == "think"', True),
        ('.toolCalls[].toolName == "bash"', False),
        ('.toolCalls[].toolName != "think"', True),  # any element differs
        (".toolCalls[].args.n > 5", True),
        (".toolCalls[].args.n > 7", False),
        ('.toolCalls[0].toolName == "readTextFile"', True),
        (".usage.totalTokens == 15", True),
        ('.usage.totalTokens == "15"', False),  # strict, as JavaScript's ===
        ('.missing.field == "x"', False),
        ('.missing.field != "x"', False),  # a missing field never matches
    ],
)
def test_condition_matches_as_perstack_does(expression, expected):
    assert parse_condition(expression).matches(CALL_TOOLS) is expected


def test_condition_booleans_are_not_numbers():
    assert parse_condition(".flag == true").matches({"flag": True})
    assert not parse_condition(".flag == 1").matches({"flag": True})
    assert not parse_condition(".n == true").matches({"n": 1})


@pytest.mark.parametrize("text", ["type == 1", ".type ~ 1", ".type ==", ".a[x] == 1", ""])
def test_condition_rejects_what_it_cannot_read(text):
    with pytest.raises(FilterError):
        parse_condition(text)


def _meta(event_type: str, step: int = 1) -> EventMeta:
    return EventMeta(timestamp=1, stepNumber=step, type=event_type, key=f"k-{event_type}")


def test_presets_filter_names_like_perstack():
    tools = build_filter(tools=True)
    assert [
        t
        for t in ("callTools", "resolveToolResults", "callInteractiveTool", "callDelegate", "x")
        if tools.matches_name(_meta(t))
    ] == ["callTools", "resolveToolResults", "callInteractiveTool"]
    delegations = build_filter(delegations=True)
    assert delegations.matches_name(_meta("stopRunByDelegate"))
    assert not delegations.matches_name(_meta("callTools"))


def _tool_result(is_error: bool):
    text = '{"error":"Error","message":"nope"}' if is_error else "fine"
    return parse_event(
        {
            **{k: CALL_TOOLS[k] for k in ("id", "expertKey", "timestamp", "jobId", "runId")},
            "type": "resolveToolResults",
            "stepNumber": 1,
            "toolResults": [
                {
                    "id": "c1",
                    "toolName": "readTextFile",
                    "result": [{"type": "textPart", "text": text}],
                }
            ],
        }
    )


def test_errors_preset_keeps_tool_results_that_are_errors():
    errors = build_filter(errors=True)
    assert errors.needs_body
    assert errors.matches_name(_meta("resolveToolResults"))
    assert errors.matches_name(_meta("stopRunByError"))
    assert not errors.matches_name(_meta("callTools"))
    assert errors.matches_event(_tool_result(is_error=True))
    assert not errors.matches_event(_tool_result(is_error=False))


def test_unreadable_event_stays_visible_unless_a_condition_cannot_be_checked():
    unreadable = Unreadable(key="k", reason="bad")
    assert build_filter(errors=True, step="1-3").matches_event(unreadable)
    assert not build_filter(condition='.type == "callTools"').matches_event(unreadable)


def test_type_filter_takes_a_comma_separated_list_and_checks_names_only():
    only = build_filter(types="callTools, completeRun")
    assert only.types == {"callTools", "completeRun"}
    assert not only.needs_body
    assert only.matches_name(_meta("completeRun"))
    assert not only.matches_name(_meta("startRun"))


def test_all_given_filters_must_pass():
    both = build_filter(step=">=2", types="callTools")
    assert both.matches_name(_meta("callTools", 2))
    assert not both.matches_name(_meta("callTools", 1))
    assert not both.matches_name(_meta("startRun", 2))
    assert EventFilter().is_empty and not both.is_empty


def test_context_adds_neighbours_within_bounds():
    assert with_context(10, [0, 5], 1) == [0, 1, 4, 5, 6]
    assert with_context(3, [2], 5) == [0, 1, 2]
    assert with_context(10, [3, 1], 0) == [1, 3]
