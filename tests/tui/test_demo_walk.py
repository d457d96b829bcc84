"""Pilot tests on the demo jobs: streams with a corrupt chunk, delegations, checkpoints, filters."""

from __future__ import annotations

import pytest

from perstack_tui.demo import write_demo
from perstack_tui.storage.memory import MemoryStorage
from perstack_tui.tui.app import PerstackApp, Target
from perstack_tui.tui.screens.job import JobScreen

from .helpers import FIXED_NOW, row_texts, wait_for

ANCHOR_MS = int(FIXED_NOW * 1000)


@pytest.fixture
async def demo() -> tuple[MemoryStorage, dict[str, str]]:
    """The demo jobs in memory: the storage and each scenario's job id."""
    storage = MemoryStorage()
    jobs = await write_demo(storage, anchor_ms=ANCHOR_MS)
    return storage, {name: job.job_id for name, job in jobs.items()}


async def open_job(storage, job_id: str, pilot_size=(120, 36)):  # type: ignore[no-untyped-def]
    return PerstackApp(storage, now=lambda: FIXED_NOW, target=Target(job_id))


async def job_screen(app: PerstackApp, pilot) -> JobScreen:  # type: ignore[no-untyped-def]
    await wait_for(
        lambda: isinstance(app.screen, JobScreen) and app.screen.all_rows_made and app.screen.rows,
        pilot,
    )
    return app.screen  # type: ignore[return-value]


def detail_text(screen: JobScreen) -> str:
    from .test_detail import full_text

    return full_text(screen.detail)


async def test_unreadable_stream_chunk_gets_its_own_row_and_is_named_in_the_assembly(
    demo,
) -> None:
    storage, ids = demo
    app = PerstackApp(storage, now=lambda: FIXED_NOW, target=Target(ids["delegation"]))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await job_screen(app, pilot)
        index = next(
            i for i, r in enumerate(screen.rows) if r.stream == "RunResult" and r.step == 5
        )
        screen.events_list.set_cursor(index)
        await wait_for(lambda: screen.rows[index].unreadable, pilot)
        group = screen.rows[index]
        (broken,) = group.unreadable
        assert broken.key not in [m.key for m in group.metas]
        own = [i for i, r in enumerate(screen.rows) if r.metas == [broken]]
        assert own, "the unreadable chunk has a row of its own"
        assert "unreadable: " in row_texts(screen.events_list)[own[0]]
        title = screen.query_one("#detail-pane").border_title
        assert title == f"detail · {group.stream_label} · step 5"
        await wait_for(lambda: "Assembled run result" in detail_text(screen), pilot)
        text = detail_text(screen).replace("\n", "")  # the long key wraps
        assert f"unreadable:{broken.key}: not valid JSON" in text
        assert "1 unreadable" in text
