"""Event filters with the meaning Perstack's ``log`` gives them, shared by the CLI and the TUI.

- Step ranges: ``5``, ``>5``, ``>=5``, ``<5``, ``<=5``, ``1-10`` (:func:`parse_step_range`).
- Field conditions: ``.a.b[].c OP value`` with ``== != > >= < <=``; a path through an array
  (``[]``) matches if any element does (:func:`parse_condition`).
- Presets: ``errors``, ``tools``, ``delegations`` (:data:`PRESETS`); ``errors`` also keeps tool
  results that are errors, which Perstack's log shows as successes.

:class:`EventFilter` checks what it can on an event's name (type, step) so a caller reads only
the candidates, then the rest on the body. Unreadable files are kept whenever their name
passes, except under a field condition they cannot be checked against.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .describe import (
    DELEGATION_EVENT_TYPES,
    ERROR_EVENT_TYPES,
    TOOL_EVENT_TYPES,
    event_is_error,
)
from .models import EventMeta, RunEvent, Unreadable


class FilterError(ValueError):
    """A step range or field condition that does not parse; the message says why."""


# --- step ranges ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepRange:
    """Steps from ``low`` to ``high``, both inclusive; ``None`` means unbounded."""

    low: int | None = None
    high: int | None = None

    def __contains__(self, step: object) -> bool:
        if not isinstance(step, int):
            return False
        return (self.low is None or step >= self.low) and (self.high is None or step <= self.high)


_STEP = re.compile(r"^(?:(?P<op>>=|<=|>|<)?\s*(?P<n>\d+)|(?P<a>\d+)\s*-\s*(?P<b>\d+))$")


def parse_step_range(text: str) -> StepRange:
    """Parse ``5``, ``>5``, ``>=5``, ``<5``, ``<=5`` or ``1-10`` into a :class:`StepRange`."""
    match = _STEP.match(text.strip())
    if match is None:
        raise FilterError(
            f"invalid step filter {text!r}: expected N, >N, >=N, <N, <=N or N-M (e.g. 1-10)"
        )
    if match["a"] is not None:
        low, high = int(match["a"]), int(match["b"])
        if low > high:
            raise FilterError(f"invalid step filter {text!r}: {low} is greater than {high}")
        return StepRange(low, high)
    n = int(match["n"])
    return {
        None: StepRange(n, n),
        ">": StepRange(n + 1, None),
        ">=": StepRange(n, None),
        "<": StepRange(None, n - 1),
        "<=": StepRange(None, n),
    }[match["op"]]


# --- field conditions -------------------------------------------------------------------

OPERATORS = ("==", "!=", ">=", "<=", ">", "<")
_CONDITION = re.compile(
    r"^\.(?P<path>[A-Za-z_][\w.\[\]]*)\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<value>.*)$"
)
_EACH = "[]"

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Condition:
    """``.path OP value``: ``path`` is a tuple of names, ``"[]"`` for each element of an array."""

    path: tuple[str, ...]
    op: str
    value: Scalar

    def matches(self, data: Any) -> bool:
        """Whether the JSON value ``data`` satisfies the condition (missing fields never do)."""
        found = _values_at(data, self.path)
        return any(_compare(actual, self.op, self.value) for actual in found)


def parse_condition(text: str) -> Condition:
    """Parse ``.a.b[].c OP value``; values are ``true``/``false``, numbers or (quoted) strings."""
    match = _CONDITION.match(text.strip())
    if match is None:
        raise FilterError(
            f"invalid filter {text!r}: expected .field.path OP value "
            f"with OP one of {' '.join(OPERATORS)} (e.g. '.toolCalls[].toolName == \"x\"')"
        )
    raw = match["value"].strip()
    if not raw:
        raise FilterError(f"invalid filter {text!r}: the value after {match['op']} is missing")
    return Condition(_parse_path(match["path"], text), match["op"], _parse_value(raw))


def _parse_path(path: str, text: str) -> tuple[str, ...]:
    parts: list[str] = []
    for chunk in path.split("."):
        name, brackets = chunk.partition("[")[0], chunk[len(chunk.partition("[")[0]) :]
        if name:
            parts.append(name)
        while brackets:
            if brackets.startswith(_EACH):
                parts.append(_EACH)
                brackets = brackets[2:]
                continue
            index = re.match(r"^\[(\d+)\]", brackets)
            if index is None:
                raise FilterError(f"invalid filter {text!r}: bad brackets in {chunk!r}")
            parts.append(index[1])
            brackets = brackets[index.end() :]
        if not name and not chunk:
            raise FilterError(f"invalid filter {text!r}: empty field name in {path!r}")
    return tuple(parts)


def _parse_value(raw: str) -> Scalar:
    if raw == "true":
        return True
    if raw == "false":
        return False
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    try:
        number = float(raw)
    except ValueError:
        return raw
    return int(number) if number.is_integer() and "." not in raw and "e" not in raw else number


def _values_at(data: Any, path: Sequence[str]) -> list[Any]:
    """Every value at ``path``; arrays met on the way (or at the end) are expanded."""
    if not path:
        return list(data) if isinstance(data, list) else [data]
    head, rest = path[0], path[1:]
    if isinstance(data, list):
        if head == _EACH:
            return [v for item in data for v in _values_at(item, rest)]
        if head.isdigit():
            index = int(head)
            return _values_at(data[index], rest) if index < len(data) else []
        return []
    if isinstance(data, dict) and head in data:
        return _values_at(data[head], rest)
    return []


def _compare(actual: Any, op: str, expected: Scalar) -> bool:
    # Strict like JavaScript's ===: true is not 1, "1" is not 1.
    if isinstance(actual, bool) or isinstance(expected, bool):
        same_kind = isinstance(actual, bool) and isinstance(expected, bool)
    elif isinstance(actual, int | float) and isinstance(expected, int | float):
        same_kind = True
    else:
        same_kind = isinstance(actual, str) and isinstance(expected, str)
    if op == "==":
        return same_kind and actual == expected
    if op == "!=":
        return not (same_kind and actual == expected)
    numeric = (
        isinstance(actual, int | float)
        and isinstance(expected, int | float)
        and not isinstance(actual, bool)
        and not isinstance(expected, bool)
    )
    if not numeric:
        return False
    return {">": actual > expected, ">=": actual >= expected, "<": actual < expected}.get(
        op, actual <= expected
    )


# --- presets and the combined filter ----------------------------------------------------

#: the preset flags of Perstack's log and the event types each keeps
PRESETS: dict[str, frozenset[str]] = {
    "errors": ERROR_EVENT_TYPES,
    "tools": TOOL_EVENT_TYPES,
    "delegations": DELEGATION_EVENT_TYPES,
}
# Types that may hold a tool result marked as an error (read to know).
_MAY_HOLD_TOOL_ERROR = frozenset({"resolveToolResults", "attemptCompletion"})


def is_error_candidate(event_type: str) -> bool:
    """Whether an event of this type may be an error (to read only those for ``errors``)."""
    return event_type in ERROR_EVENT_TYPES or event_type in _MAY_HOLD_TOOL_ERROR


@dataclass(frozen=True)
class EventFilter:
    """Every ``log`` filter at once; all given filters must pass (as in Perstack's log).

    Use :meth:`matches_name` on listings, then :meth:`matches_event` on the bodies of the
    events that passed, and only when :attr:`needs_body`.
    """

    steps: StepRange | None = None
    types: frozenset[str] | None = None
    errors: bool = False
    tools: bool = False
    delegations: bool = False
    condition: Condition | None = None

    @property
    def needs_body(self) -> bool:
        """Whether the event body must be read to decide (``--filter`` or tool-result errors)."""
        return self.condition is not None or self.errors

    @property
    def is_empty(self) -> bool:
        return self == EventFilter()

    def matches_name(self, meta: EventMeta) -> bool:
        """The checks a listing can answer: step, type, presets."""
        if self.steps is not None and meta.stepNumber not in self.steps:
            return False
        if self.types is not None and meta.type not in self.types:
            return False
        if self.errors and not is_error_candidate(meta.type):
            return False
        if self.tools and meta.type not in PRESETS["tools"]:
            return False
        return not (self.delegations and meta.type not in PRESETS["delegations"])

    def matches_event(self, event: RunEvent | Unreadable) -> bool:
        """The checks that need the body.

        An unreadable file passes unless a field condition is given (it cannot be checked
        against one): callers count those and say so, so they do not vanish silently.
        """
        if isinstance(event, Unreadable):
            return self.condition is None
        if self.errors and not event_is_error(event):
            return False
        return self.condition is None or self.condition.matches(event.to_json_dict())


def build_filter(
    *,
    step: str | None = None,
    types: str | Sequence[str] | None = None,
    errors: bool = False,
    tools: bool = False,
    delegations: bool = False,
    condition: str | None = None,
) -> EventFilter:
    """An :class:`EventFilter` from ``log``'s flag values; :class:`FilterError` if one is bad.

    ``types`` may be one type, a comma-separated list, or a sequence of types.
    """
    type_set: frozenset[str] | None = None
    if types:
        names = types.split(",") if isinstance(types, str) else list(types)
        type_set = frozenset(n.strip() for n in names if n.strip()) or None
    return EventFilter(
        steps=parse_step_range(step) if step else None,
        types=type_set,
        errors=errors,
        tools=tools,
        delegations=delegations,
        condition=parse_condition(condition) if condition else None,
    )


def with_context(total: int, matched: Sequence[int], context: int) -> list[int]:
    """``matched`` indices plus ``context`` neighbours on each side, sorted, within ``total``."""
    if context <= 0:
        return sorted(set(matched))
    keep: set[int] = set()
    for index in matched:
        keep.update(range(max(0, index - context), min(total, index + context + 1)))
    return sorted(keep)
