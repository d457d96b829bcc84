"""Helpers for Pilot tests: wait on a condition with a deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.pilot import Pilot

#: a fixed "now" (ms 1795299500000) just after the real fixtures were written
FIXED_NOW = 1795299500.0


async def wait_for(condition: Callable[[], object], pilot: Pilot, timeout: float = 5.0) -> None:
    """Let the app run until ``condition()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(0.02)


def row_texts(virtual_list) -> list[str]:  # type: ignore[no-untyped-def]
    """The plain text of every row of a VirtualList (as it would paint at its width)."""
    width = max(virtual_list.size.width, 200)
    return [virtual_list._render_row(i, width).plain for i in range(virtual_list.row_count)]
