#!/usr/bin/env python3
"""Render the real app on demo data and save screenshots into ``screenshots/``.

    python3 dev.py screenshots          (or: .venv/bin/python scripts/screenshots.py)

Each screen is driven by keys through Textual's Pilot at 120x36 (and one at 80x24), saved
as SVG, and converted to PNG when ``rsvg-convert`` or ``cairosvg`` is available. The demo
data and the clock are fixed, so the pictures only change when the app does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# every picture from a first visit, whatever an earlier run left in the user's cache
os.environ["PERSTACK_TUI_CACHE_DIR"] = "off"

from perstack_tui.demo import build_demo, write_demo  # noqa: E402
from perstack_tui.storage.memory import MemoryStorage  # noqa: E402
from perstack_tui.tui.app import PerstackApp, Target  # noqa: E402
from perstack_tui.tui.screens.job import JobScreen  # noqa: E402

OUT = ROOT / "screenshots"
ANCHOR_MS = 1795300000000  # fixed "now" of the demo data and of the app's clock


async def settle(pilot, condition: Callable[[], object], timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the app did not reach the expected state")
        await pilot.pause(0.05)
    await pilot.pause(0.3)  # let the last repaint land


Steps = Callable[[PerstackApp, object], Awaitable[None]]


async def shoot(name: str, steps: Steps, *, target: Target | None = None, size=(120, 36)) -> Path:  # type: ignore[no-untyped-def]
    storage = MemoryStorage("demo")
    await write_demo(storage, anchor_ms=ANCHOR_MS)
    app = PerstackApp(storage, now=lambda: ANCHOR_MS / 1000, target=target)
    async with app.run_test(size=size) as pilot:
        await steps(app, pilot)
        svg = OUT / f"{name}.svg"
        app.save_screenshot(str(svg))
    return svg


def on_job_screen(app: PerstackApp) -> bool:
    return isinstance(app.screen, JobScreen) and bool(app.screen.rows)


def _bodies_read(app: PerstackApp) -> bool:
    screen = app.screen
    first, last = screen.events_list.visible_range
    return all(r.key in screen.events for r in screen.rows[first:last])


async def jobs_list(app, pilot) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot, lambda: app.screen.order and not app.screen._pending)


async def job_events(app, pilot) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot, lambda: on_job_screen(app) and _bodies_read(app))
    screen = app.screen
    index = [r.first.type for r in screen.rows].index("callDelegate")
    screen.events_list.set_cursor(index)
    await settle(pilot, lambda: _bodies_read(app))


async def readable(app, pilot) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot, lambda: on_job_screen(app) and _bodies_read(app))
    screen = app.screen
    index = [r.first.type for r in screen.rows].index("resolveToolResults")
    screen.events_list.set_cursor(index)
    await pilot.press("enter")
    await settle(pilot, lambda: not screen.detail.is_loading)


async def raw(app, pilot) -> None:  # type: ignore[no-untyped-def]
    await readable(app, pilot)
    await pilot.press("r")
    await settle(pilot, lambda: not app.screen.detail.is_loading)


async def checkpoint_diff(app, pilot) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot, lambda: on_job_screen(app) and _bodies_read(app))
    screen = app.screen
    index = [r.first.type for r in screen.rows].index("continueToNextStep")
    screen.events_list.set_cursor(index)
    await pilot.press("right_square_bracket", "c")
    await settle(pilot, lambda: getattr(app.screen, "current", None) is not None)
    await pilot.press("d")
    await settle(pilot, lambda: not app.screen.is_loading)


async def help_screen(app, pilot) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot, lambda: app.screen.order)
    await pilot.press("question_mark")
    await settle(pilot, lambda: True)


def to_png(svg: Path) -> Path | None:
    png = svg.with_suffix(".png")
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", str(svg), "-o", str(png)], check=True)
        return png
    try:
        import cairosvg  # type: ignore[import-not-found]
    except ImportError:
        return None
    cairosvg.svg2png(url=str(svg), write_to=str(png))
    return png


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    demo = build_demo(anchor_ms=ANCHOR_MS)
    delegation = Target(demo["delegation"].job_id)
    shots = [
        await shoot("jobs", jobs_list),
        await shoot("job-events", job_events, target=delegation),
        await shoot("event-readable", readable, target=delegation),
        await shoot("event-raw", raw, target=delegation),
        await shoot("checkpoint-diff", checkpoint_diff, target=delegation),
        await shoot("help", help_screen),
        await shoot("job-80x24", job_events, target=delegation, size=(80, 24)),
    ]
    for svg in shots:
        png = to_png(svg)
        print(f"screenshots: {svg.relative_to(ROOT)}" + (f" + {png.name}" if png else ""))


if __name__ == "__main__":
    asyncio.run(main())
