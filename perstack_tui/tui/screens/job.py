"""One job: its runs (nested by delegation), their events by step, and the selected event.

Rows come from key listings (an event's name carries its time, step and type), so a run
with thousands of events opens at once; event bodies are read only for the rows on
screen. A burst of streaming events folds into one row whose text grows as deltas land.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from heapq import merge
from itertools import islice, repeat

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

from ... import keys
from ...catalog import (
    Catalog,
    RunSummary,
    checkpoint_ref_for_step,
    checkpoint_refs_of,
    run_status,
)
from ...describe import (
    DELEGATION_EVENT_TYPES,
    ERROR_EVENT_TYPES,
    TOOL_EVENT_TYPES,
    event_category,
    event_checkpoint,
    event_is_error,
    format_duration,
    format_time,
    format_tokens,
    gist,
    one_line,
    type_category,
)
from ...follow import JobFollower
from ...models import (
    CHECKPOINT_EVENT_TYPES,
    STREAMING_EVENT_TYPES,
    CallDelegate,
    EventMeta,
    RunEvent,
    StreamBoundary,
    StreamDelta,
    Unreadable,
)
from ...storage.base import by_time, paused_gc
from ..widgets.footer import Footer
from ..widgets.header import StorageHeader
from ..widgets.virtual_list import VirtualList
from .jobs import fit, status_mark

ALL_RUNS = "all runs"
#: event types whose body may hold a tool error (the errors filter reads them)
_RESULT_TYPES = frozenset({"resolveToolResults", "attemptCompletion", "retry"})
#: at most this many stream deltas are read to assemble one row's text
_MAX_STREAM_READS = 400
#: rows made before a job's events show, at least (a screen's: the rest come after it)
_FIRST_ROWS = 20
#: the newest rows a later event may still fold into (an open stream is looked for there)
_UNSETTLED = 8
#: events made rows at a time once the first screen shows, between which the app runs
_EVENTS_A_SLICE = 4096
#: how long a job screen waits for its rows (then for their events' text) before it shows
#: without them: a local disk lists and reads them in tens of ms, and one paint with them
#: costs less than a "loading" paint and then another
_FIRST_PAINT_WAIT = 0.1
#: how long opening a job waits for its runs' listing before it builds the screen (which
#: then shows them loading)
_LISTING_WAIT = _FIRST_PAINT_WAIT / 2

_TYPE_STYLE = {
    "error": "bold red",
    "tool": "yellow",
    "delegation": "magenta",
    "stream": "dim cyan",
    "checkpoint": "blue",
}


#: ``"Reasoning"`` or ``"RunResult"`` for each streaming type
_STREAM_KIND = {t: "Reasoning" if "Reasoning" in t else "RunResult" for t in STREAMING_EVENT_TYPES}


def stream_kind(event_type: str) -> str | None:
    """``"Reasoning"`` or ``"RunResult"`` for the streaming types, else ``None``."""
    return _STREAM_KIND.get(event_type)


@dataclass(slots=True)
class EventRow:
    """One row of the events list: one event, or a folded burst of streaming events."""

    run_id: str
    metas: list[EventMeta] = field(default_factory=list)
    stream: str | None = None  # "Reasoning" / "RunResult" for a folded stream
    closed: bool = False  # the stream's complete* event arrived
    #: chunks of this stream that could not be read: each has its own row, never folded in,
    #: and the assembled detail names them (key and reason)
    unreadable: list[EventMeta] = field(default_factory=list)

    @property
    def first(self) -> EventMeta:
        return self.metas[0]

    @property
    def step(self) -> int:
        return self.first.stepNumber

    @property
    def key(self) -> str:
        return self.first.key

    @property
    def stream_label(self) -> str:
        """What a folded stream row is, e.g. ``reasoning`` and the count of its deltas."""
        label = "reasoning" if self.stream == "Reasoning" else "result"
        count = sum(1 for m in self.metas if m.type.startswith("stream"))
        return f"{label} ×{count}"


def parse_step_range(text: str) -> tuple[int, int] | None:
    """``5``, ``>5``, ``>=5``, ``<5``, ``<=5``, ``1-10`` as an inclusive (low, high) range."""
    text = text.replace(" ", "")
    big = 1 << 62
    if match := re.fullmatch(r"(\d+)-(\d+)", text):
        return int(match[1]), int(match[2])
    if match := re.fullmatch(r"(>=|<=|>|<)?(\d+)", text):
        op, value = match[1], int(match[2])
        return {
            None: (value, value),
            ">": (value + 1, big),
            ">=": (value, big),
            "<": (0, value - 1),
            "<=": (0, value),
        }[op]
    return None


def _detail_widget() -> Widget:
    """The detail pane's widget, whose module (and the widgets it uses: ~25 ms of imports)
    is imported here, if :func:`warm_up` has not done it already."""
    from ..widgets.event_view import EventDetail

    return EventDetail(id="detail")


def warm_up() -> None:
    """Import what a job screen's first opening would otherwise import then (~25 ms): its
    detail pane (:func:`_detail_widget`), the scroll bars a pane grows, the emoji table the
    first markup label (a JSON tree's) renders with. Meant for a time nothing else is
    waited for, such as once the jobs list's first screen is filled."""
    import textual.scrollbar  # noqa: F401
    from rich.markup import render

    from ..widgets import event_view  # noqa: F401

    render(":")


class JobScreen(Screen[None]):
    """Runs on the left, events in the middle, the selected event's detail on the right."""

    BINDINGS = [
        Binding("tab", "focus_next_pane", "pane", show=False, tooltip="next pane"),
        Binding("shift+tab", "focus_previous_pane", "pane", show=False, tooltip="previous pane"),
        Binding("escape", "back", "back", tooltip="back (from the detail, a delegate, or the job)"),
        Binding("f", "follow", "follow", tooltip="follow new events (again: stop)"),
        Binding("c", "checkpoint", "checkpoint", tooltip="open the checkpoint of the step"),
        Binding(
            "left_square_bracket",
            "previous_checkpoint",
            "prev ckpt",
            show=False,
            tooltip="previous checkpoint event",
        ),
        Binding(
            "right_square_bracket",
            "next_checkpoint",
            "next ckpt",
            show=False,
            tooltip="next checkpoint event",
        ),
        Binding(
            "u",
            "to_caller",
            "to caller",
            show=False,
            tooltip="to the delegation that started this run",
        ),
        Binding("E", "toggle_filter('errors')", "errors", tooltip="only errors (toggle)"),
        Binding(
            "t", "toggle_filter('tools')", "tools", tooltip="only tool calls and results (toggle)"
        ),
        Binding(
            "D", "toggle_filter('delegations')", "delegations", tooltip="only delegations (toggle)"
        ),
        Binding("number_sign", "step_range", "steps", tooltip="only steps: 5, >5, <=5, 1-10"),
        Binding(
            "slash", "text_filter", "filter", show=False, tooltip="filter events by type or text"
        ),
        Binding("x", "clear_filters", "clear filters", show=False),
        Binding("y", "copy_id", "copy id", tooltip="copy JOB/RUN#STEP (or the job / run id)"),
        Binding(
            "Y",
            "copy_json",
            "copy JSON",
            show=False,
            tooltip="copy the event's JSON (secrets masked)",
        ),
        Binding(
            "e", "export", "export", tooltip="export the event (runs pane: the run or the job)"
        ),
        Binding("R,ctrl+r", "retry", "retry", show=False, tooltip="retry after a storage error"),
    ]

    DEFAULT_CSS = """
    JobScreen #body { height: 1fr; }
    JobScreen #runs-pane { width: 30; }
    JobScreen #main { width: 1fr; }
    JobScreen #events-pane { height: 1fr; }
    JobScreen #detail-pane { height: 1fr; }
    JobScreen .pane { border: round $panel-lighten-2; }
    JobScreen .pane:focus-within { border: round $accent; }
    JobScreen #runs, JobScreen #events { height: 1fr; }
    JobScreen #detail { height: 1fr; overflow-y: auto; }
    JobScreen #job-input { dock: bottom; display: none; }
    JobScreen.asking #job-input { display: block; }
    JobScreen.narrow #body { layout: vertical; }
    JobScreen.narrow #runs-pane { width: 1fr; height: 5; }
    JobScreen.narrow #events-pane { height: 1fr; }
    JobScreen.narrow #detail-pane { height: 1fr; }
    """

    def __init__(
        self,
        job_id: str,
        *,
        run_id: str | None = None,
        step: int | None = None,
        follow: bool = False,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.runs: list[RunSummary] = []
        self.run_choice: str = run_id or ALL_RUNS
        self.rows: list[EventRow] = []
        #: the events shown not made rows yet (by time, with their run), while there are
        self._more: Iterator[tuple[EventMeta, str]] | None = None
        self.events: dict[str, RunEvent | Unreadable] = {}  # bodies read so far, by key
        self.following = follow
        self.new_while_paused = 0
        self.filters: set[str] = set()
        self.step_range: tuple[int, int] | None = None
        self.text_filter = ""
        self._asking: str | None = None  # what the bottom input is for
        self._start_step = step
        self._jumps: list[tuple[str, str]] = []  # (run choice, event key) to go back to
        self._wanted = asyncio.Event()
        #: set once the first screen is painted, with its rows' events read where that took
        #: less than a moment (what waits for the first screen waits for this)
        self.shown = asyncio.Event()
        self._read_round = asyncio.Event()  # the bodies wanted were read (or failed)
        self._laid_out = asyncio.Event()  # the lists have their size: rows can be made
        #: the job's runs, listed before the screen was built (:meth:`list_first`)
        self._listing: asyncio.Future[list[RunSummary]] | None = None
        #: the app's paints, held from the screen's mount until its rows show (briefly)
        self._first_paint = contextlib.ExitStack()
        self.holds_paint = False
        #: cyclic garbage collection, put off from the listing until the first screen is
        #: painted (~6 ms of collections of what the opening builds, most of it for good)
        self._collection_put_off = contextlib.ExitStack()

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StorageHeader(f"job {self.job_id}")
        with Horizontal(id="body"):
            with Vertical(id="runs-pane", classes="pane") as runs_pane:
                runs_pane.border_title = "runs"
                yield VirtualList(self.render_run, id="runs", empty_text="loading runs…")
            with Vertical(id="main"):
                with Vertical(id="events-pane", classes="pane") as events_pane:
                    events_pane.border_title = "events"
                    yield VirtualList(
                        self.render_event,
                        id="events",
                        empty_text="loading events…",
                        before_last=self._finish_rows,
                    )
                with Vertical(id="detail-pane", classes="pane") as detail_pane:
                    detail_pane.border_title = "detail"
                    yield _detail_widget()
        yield Input(id="job-input")
        yield Footer()

    @property
    def runs_list(self) -> VirtualList:
        return self.query_one("#runs", VirtualList)

    @property
    def events_list(self) -> VirtualList:
        return self.query_one("#events", VirtualList)

    @property
    def detail(self) -> Widget:
        return self.query_one("#detail")

    def on_mount(self) -> None:
        # the screen paints once, with its rows, unless they take a while: no "loading"
        # frame to lay out and paint first (~15 ms) when the listing is quick
        self._first_paint.enter_context(self.app.batch_update())
        self.holds_paint = True
        # a screen paints on its update timer (Textual's, private), whose first tick comes
        # a frame (1/60 s) after it first runs, and held paints keep it from running: run
        # it now, so the paint the hold lets go of is made at once, not a frame later
        timer = getattr(self, "_update_timer", None)
        if timer is not None:
            timer.resume()
        self.set_timer(_FIRST_PAINT_WAIT, self._release_paint)
        self.call_after_refresh(self._laid_out.set)
        self.events_list.focus()
        self.load()
        self.read_bodies()

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "narrow")

    # --- loading ------------------------------------------------------------------------

    async def list_first(self, catalog: Catalog, wait: float = _LISTING_WAIT) -> None:
        """List the job's runs before the screen is built: back once they are listed, or
        after ``wait`` seconds (the screen then shows them loading, and takes the listing
        over). Listed while nothing is being built, the listing has the interpreter to
        itself; listed while the screen is built, each waits on the other (~5 ms more at
        10,000 events)."""
        if self._unsafe_id() is not None:  # the screen says so
            return
        self._collection_put_off.enter_context(paused_gc())  # see _release_paint
        listing = self._listing = asyncio.ensure_future(catalog.runs(self.job_id))
        try:
            await asyncio.wait([listing], timeout=wait)
        except asyncio.CancelledError:  # another job opened meanwhile: this one never shows
            listing.cancel()
            self._collection_put_off.close()
            raise

    @work(exclusive=True, group="job-load")
    async def load(self) -> None:
        """List the job's runs and events, then follow it for new ones (once the first
        screen shows)."""
        try:
            await self._load()
        finally:
            self._release_paint()

    def _release_paint(self) -> None:
        """Let the first paint go (the rows show, or they take a while), and collection
        resume once it is made (the app's callback: this screen may be gone by then)."""
        self.holds_paint = False
        self._first_paint.close()
        self.app.call_after_refresh(self._collection_put_off.close)

    def on_unmount(self) -> None:
        self._collection_put_off.close()  # closed before its first paint (the app quit)

    def _unsafe_id(self) -> keys.UnsafeIdError | None:
        try:
            keys.check_id(self.job_id, "job id")
            if self.run_choice != ALL_RUNS:
                keys.check_id(self.run_choice, "run id")
        except keys.UnsafeIdError as error:
            return error
        return None

    async def _load(self) -> None:
        error = self._unsafe_id()  # e.g. `open ../etc`: nothing to list or follow
        if error is not None:
            self.events_list.set_empty_text(f"cannot open {error}  — esc: back to the jobs list")
            self.runs_list.set_empty_text("")
            return
        listing, self._listing = self._listing, None
        runs = await self.app.guarded(listing or self.app.catalog.runs(self.job_id))
        await self._laid_out.wait()  # a screen of rows: as many as the list has room for
        if not self.query("#runs"):  # closed (or the app quit) while listing
            return
        if runs is None:
            problem = f"cannot read job: {self.app.storage_problem}  — press R to retry"
            self.events_list.set_empty_text(problem)
            self.runs_list.set_empty_text("")
            return
        self.runs = runs
        if self.run_choice != ALL_RUNS and self.run_choice not in self.run_ids:
            self.notify(f"no run {self.run_choice} in job {self.job_id}", severity="warning")
            self.run_choice = ALL_RUNS
        if not runs:
            self.events_list.set_empty_text(await self._no_runs_text())
        with self.app.batch_update():  # the rows and their text in one paint, when quick
            self._show_runs()
            self._read_round.clear()
            self._rebuild_rows()
            if self._start_step is not None:
                self.jump_to_step(self._start_step)
                self._start_step = None
            elif self.following or not self.rows:
                self._finish_rows()
                self.events_list.set_cursor(len(self.rows) - 1)
            self._update_header()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._read_round.wait(), _FIRST_PAINT_WAIT)
        self._release_paint()
        self.call_after_refresh(self._screen_shown)  # after the paint of the rows
        summary = self.app.catalog.cached_job(self.job_id)
        if summary is None or not summary.complete:  # opened before it was summarized
            self.refresh_summary(refresh=False)
        await self.shown.wait()  # its first poll lists the job again: after the first screen
        await self._follow_job()

    async def _no_runs_text(self) -> str:
        """Why the job shows no events: it does not exist, or it has no runs yet."""
        storage = self.app.catalog.storage
        prefix = keys.job_prefix(self.job_id)
        folders = await self.app.guarded(storage.list_prefixes(prefix), quiet=True)
        files = await self.app.guarded(storage.list_keys(prefix), quiet=True)
        if not folders and not files:
            where = self.app.storage_location
            return f"no job {self.job_id!r} in {where}  — esc: back to the jobs list"
        return f"job {self.job_id} has no runs yet"

    async def _follow_job(self) -> None:
        seen = {run.run_id: run.events for run in self.runs}
        follower = JobFollower(self.app.catalog.storage, self.job_id, seen=seen)
        async for update in follower.updates():
            if update.error:
                self.app.storage_problem = update.error
                self.app.storage_state = "error"
                continue
            if update.is_empty:
                continue
            if self.app.storage_state == "error":
                self.app.storage_state = "ok"
            self._take_update(update.new_runs, update.new_events, update.event_keys)

    def _take_update(
        self,
        new_runs: list[str],
        new_events: list[RunEvent | Unreadable],
        event_keys: list[str],
    ) -> None:
        """Add what the follower found; keep the cursor pinned when following.

        Events are placed by the key they were read from: a run continued with
        ``--continue-job`` lives in a new run folder, but its events may name the previous
        run in their ``runId``.
        """
        self._finish_rows()  # new events go after every one listed
        by_id = {run.run_id: run for run in self.runs}
        for run_id in new_runs:
            if run_id not in by_id:
                by_id[run_id] = RunSummary(job_id=self.job_id, run_id=run_id)
                self.runs.append(by_id[run_id])
        added = 0
        for key, event in zip(event_keys, new_events, strict=True):
            meta = _meta_of(key)
            if meta is None:
                continue
            run_id = keys.parse_key(key).run_id or ""
            run = by_id.get(run_id)
            if run is None:
                run = by_id[run_id] = RunSummary(job_id=self.job_id, run_id=run_id)
                self.runs.append(run)
            run.events.add(meta)
            self.events[meta.key] = event
            if isinstance(event, RunEvent):
                run.expert = run.expert or event.expertKey
                _note_delegation(run, event)
            if self._row_visible_for(run_id) and self._append_meta(run_id, meta):
                added += 1
        for run in self.runs:
            if run.events:
                run.status = run_status(run.events[-1].type)
        self._nest_new_runs()
        self._show_runs()
        self._grow_rows(added)
        self.refresh_summary()

    @work(exclusive=True, group="job-summary")
    async def refresh_summary(self, *, refresh: bool = True) -> None:
        """The header's summary again (``refresh``: listed again, even if complete)."""
        catalog = self.app.catalog
        await self.app.guarded(catalog.job(self.job_id, refresh=refresh), quiet=True)
        if self.query(StorageHeader):
            self._update_header()

    @work(group="event-bodies")
    async def read_bodies(self) -> None:
        """Read the bodies of the rows on screen (and of the selected row), forever; rows
        made again (another run, a filter) are made whole once the screen shows them."""
        try:
            while True:
                await self._wanted.wait()
                self._wanted.clear()
                await self._read_wanted()
                self._read_round.set()
                if self.shown.is_set() and self._more is not None:  # rows made again
                    self.call_after_refresh(self._complete_rows)
        except NoMatches:  # the screen closed (or the app quit) meanwhile
            return

    def _screen_shown(self) -> None:
        """What waits for the first screen: the rest of the rows, the runs' step ranges,
        the follower."""
        self.shown.set()
        self.runs_list.refresh()
        if self._more is not None:
            self._complete_rows()

    async def _read_wanted(self) -> None:
        wanted = self._wanted_keys()
        if not wanted:
            return
        storage = self.app.catalog.storage
        bodies = await self.app.guarded(storage.read_events(wanted), quiet=True)
        if bodies is None:
            return
        for key, body in zip(wanted, bodies, strict=True):
            self.events[key] = body
        if self._unreadable_folded(wanted, bodies):
            self._rebuild_rows(keep_cursor=True)  # give it a row of its own
        self.events_list.refresh()
        self._show_detail()
        if self.filters & {"errors"}:
            self._rebuild_rows(keep_cursor=True)

    def _unreadable_folded(self, read: list[str], bodies: list[RunEvent | Unreadable]) -> bool:
        """Whether a chunk just found unreadable sits folded in a stream row."""
        found = {k for k, b in zip(read, bodies, strict=True) if isinstance(b, Unreadable)}
        found = {k for k in found if stream_kind(_meta_type(k)) is not None}
        return bool(found) and any(
            m.key in found for row in self.rows if row.stream for m in row.metas
        )

    def _wanted_keys(self) -> list[str]:
        first, last = self.events_list.visible_range
        indexes = [*range(first, last), self.events_list.cursor]
        wanted: list[str] = []
        for index in indexes:
            if 0 <= index < len(self.rows):
                metas = self.rows[index].metas
                if len(metas) > _MAX_STREAM_READS:
                    metas = metas[:1] + metas[-_MAX_STREAM_READS:]
                wanted += [m.key for m in metas if m.key not in self.events]
        if "errors" in self.filters:  # tool results must be read to know if they failed
            wanted += [
                m.key
                for run in self.runs
                for m in run.events
                if m.type in _RESULT_TYPES and m.key not in self.events
            ]
        return list(dict.fromkeys(wanted))

    # --- runs ---------------------------------------------------------------------------

    @property
    def run_ids(self) -> list[str]:
        return [run.run_id for run in self.runs]

    def _show_runs(self) -> None:
        choices = [ALL_RUNS, *self.run_ids]
        cursor = choices.index(self.run_choice) if self.run_choice in choices else 0
        self.runs_list.set_row_count(len(choices), cursor=cursor)

    def _nest_new_runs(self) -> None:
        by_id = {run.run_id: run for run in self.runs}
        for run in self.runs:
            caller = by_id.get(run.delegated_by_run or "")
            run.depth = caller.depth + 1 if caller is not None and caller is not run else 0

    def render_run(self, index: int, width: int) -> Text:
        if index == 0:
            count = sum(len(r.events) for r in self.runs)
            return Text.assemble(("≡ ", "bold"), (f"all runs ({count} events)", "bold"))
        run = self.runs[index - 1]
        mark, style, _label = status_mark(run.status)
        # a run's step range is read off every name of it (~1-3 ms at 10,000 events): it
        # shows right after the first screen of rows, not before it
        steps = run.steps if self.shown.is_set() else None
        step_text = "" if steps is None else f" {steps[0]}-{steps[1]}"
        # spaces go in unstyled pieces: SVG screenshots drop a styled piece's leading space
        return Text.assemble(
            "  " * run.depth + ("└ " if run.depth else ""),
            (mark, style),
            " ",
            (run.expert or "?", "cyan"),
            " ",
            (run.run_id[:8], "dim"),
            step_text,
        )

    @on(VirtualList.Highlighted, "#runs")
    def _run_highlighted(self, event: VirtualList.Highlighted) -> None:
        choice = ALL_RUNS if event.index == 0 else self.run_ids[event.index - 1]
        if choice != self.run_choice:
            self.run_choice = choice
            self._rebuild_rows()
            self.events_list.set_cursor(0)

    @on(VirtualList.Selected, "#runs")
    def _run_selected(self) -> None:
        self.events_list.focus()

    # --- event rows ---------------------------------------------------------------------

    def _row_visible_for(self, run_id: str) -> bool:
        return self.run_choice in (ALL_RUNS, run_id)

    def _passes(self, meta: EventMeta) -> bool:
        if self.step_range and not self.step_range[0] <= meta.stepNumber <= self.step_range[1]:
            return False
        if self.text_filter:
            body = self.events.get(meta.key)
            text = f"{meta.type} {gist(body, None) if body is not None else ''}".lower()
            if self.text_filter.lower() not in text:
                return False
        if not self.filters:
            return True
        body = self.events.get(meta.key)
        if "errors" in self.filters and (
            meta.type in ERROR_EVENT_TYPES
            or isinstance(body, Unreadable)
            or (isinstance(body, RunEvent) and event_is_error(body))
        ):
            return True
        if "tools" in self.filters and meta.type in TOOL_EVENT_TYPES:
            return True
        return "delegations" in self.filters and meta.type in DELEGATION_EVENT_TYPES

    def _append_meta(self, run_id: str, meta: EventMeta) -> bool:
        """Add one event to the rows (folding streams); true if a new row was made.

        Called for every event of a job when its rows are built: the usual case (a plain
        event, or a delta of the stream in the row above) takes a few lookups."""
        if (self.filters or self.step_range or self.text_filter) and not self._passes(meta):
            return False
        kind = _STREAM_KIND.get(meta.type)
        rows = self.rows
        if kind is None:
            rows.append(EventRow(run_id, [meta]))
            return True
        if self.events and isinstance(self.events.get(meta.key), Unreadable):
            open_row = _open_stream(rows, run_id, kind)
            if open_row is not None:  # the open stream names it in its detail
                open_row.unreadable.append(meta)
            rows.append(EventRow(run_id, [meta]))
            return True
        open_row = _open_stream(rows, run_id, kind)
        if open_row is not None:
            open_row.metas.append(meta)
            open_row.closed = meta.type.startswith("complete")
            return False
        rows.append(EventRow(run_id, [meta], kind, meta.type.startswith("complete")))
        return True

    def _rebuild_rows(self, *, keep_cursor: bool = False) -> None:
        """Make the rows again (another run chosen, a filter): a screen's first, the rest
        after it shows (:meth:`_complete_rows`), unless the cursor stays on its row."""
        current = self.current_row.key if keep_cursor and self.current_row else None
        self.rows = []
        shown = (run for run in self.runs if self._row_visible_for(run.run_id))
        self._more = _events_with_runs(shown)
        self._take_rows(None if current else max(_FIRST_ROWS, self.events_list.size.height))
        cursor = next((i for i, r in enumerate(self.rows) if r.key == current), None)
        self.events_list.set_row_count(self._settled_rows, cursor=cursor)
        if not self.rows and self.runs:
            self.events_list.set_empty_text("no events match the filters  (x clears)")
        self._update_events_title()
        self._wanted.set()

    def _take_rows(self, rows: int | None = None, events: int | None = None) -> None:
        """Make rows of the events not made rows yet: all of them, or until ``rows`` of
        the rows are settled (no later event folds into them), or ``events`` more."""
        source, append, made = self._more, self._append_meta, self.rows
        if source is None:
            return
        enough = None if rows is None else rows + _UNSETTLED
        taken = 0
        with paused_gc():  # 10,000s of rows and keys: no collection walks them as they come
            for meta, run_id in source if events is None else islice(source, events):
                append(run_id, meta)
                taken += 1
                if enough is not None and len(made) >= enough:
                    return
        if events is None or taken < events:
            self._more = None

    @property
    def all_rows_made(self) -> bool:
        """Whether every event listed is in a row (not only a first screen's)."""
        return self._more is None

    @property
    def _settled_rows(self) -> int:
        """The rows to show: all once made, else those no later event changes."""
        return len(self.rows) if self._more is None else max(0, len(self.rows) - _UNSETTLED)

    def _finish_rows(self) -> None:
        """Make the rest of the rows now (what needs them all: a jump, the newest row)."""
        if self._more is not None:
            self._take_rows()
            self._show_all_rows()

    @work(exclusive=True, group="event-rows")
    async def _complete_rows(self) -> None:
        """Make the rest of the rows a slice at a time, the app running between slices."""
        source = self._more
        while source is not None and self._more is source:
            self._take_rows(events=_EVENTS_A_SLICE)
            if self._more is None:
                self._show_all_rows()
                return
            await asyncio.sleep(0)

    def _show_all_rows(self) -> None:
        self.events_list.set_row_count(len(self.rows))
        self._update_events_title()

    def _grow_rows(self, added: int) -> None:
        """New rows arrived: pin to the newest when following, else count them."""
        if self.following and not self._paused:
            self.events_list.set_row_count(len(self.rows), cursor=len(self.rows) - 1)
        else:
            self.events_list.set_row_count(len(self.rows))
            self.new_while_paused += added
        self.events_list.refresh()
        self._update_events_title()
        self._wanted.set()

    @property
    def _paused(self) -> bool:
        return self.new_while_paused > 0 or (
            self.events_list.row_count > 0 and not self.events_list.at_end
        )

    @property
    def current_row(self) -> EventRow | None:
        cursor = self.events_list.cursor
        return self.rows[cursor] if 0 <= cursor < len(self.rows) else None

    def render_event(self, index: int, width: int) -> Text:
        row = self.rows[index]
        meta = row.first
        previous = self.rows[index - 1] if index else None
        new_step = previous is None or previous.step != row.step or previous.run_id != row.run_id
        text = Text(no_wrap=True)
        text.append(f"{row.step:>4} " if new_step else "     ", "bold" if new_step else "")
        text.append(f"{format_time(meta.timestamp)} ", "dim")
        if self.run_choice == ALL_RUNS and len(self.runs) > 1:
            run = next((r for r in self.runs if r.run_id == row.run_id), None)
            indent = "·" * (run.depth if run else 0)
            size = 16 if width >= 90 else 10
            expert = fit(run.expert if run else "", size + 1)
            text.append(f"{indent}{expert:<{size}}", "cyan")
            text.append(" ")
        body = self.events.get(meta.key)
        if row.stream is not None:
            text.append(row.stream_label.ljust(21), _TYPE_STYLE["stream"])
            text.append(self._stream_text(row), "")
            return text
        category = _category(meta.type, body)
        text.append(f"{meta.type:<21}", _TYPE_STYLE.get(category, ""))
        if body is None:
            text.append("…", "dim")
        elif isinstance(body, Unreadable):
            text.append(f"unreadable: {body.reason}", "red")
        else:
            text.append(gist(body, max(width, 20)), "red" if category == "error" else "")
        return text

    def _stream_text(self, row: EventRow) -> str:
        """The text a folded stream assembled so far (the complete* text once it is there)."""
        parts: list[str] = []
        for meta in row.metas:
            body = self.events.get(meta.key)
            if isinstance(body, StreamBoundary) and body.text:
                return one_line(body.text, None)
            if isinstance(body, StreamDelta):
                parts.append(body.delta)
        text = one_line("".join(parts), None)
        if row.unreadable:
            text = f"[{len(row.unreadable)} unreadable] {text}"
        return text

    def _update_events_title(self) -> None:
        pane = self.query_one("#events-pane")
        parts = [f"events ({len(self.rows) if self._more is None else '…'})"]
        if self.run_choice != ALL_RUNS:
            parts.append(f"run {self.run_choice[:8]}")
        parts += sorted(self.filters)
        if self.step_range:
            low, high = self.step_range
            parts.append(f"steps {low}-{high}" if high < 1 << 62 else f"steps ≥{low}")
        if self.text_filter:
            parts.append(f"/{self.text_filter}")
        pane.border_title = " · ".join(parts)
        if self.following and self.new_while_paused:
            pane.border_subtitle = f"+{self.new_while_paused} new · End/f resumes"
        elif self.following:
            pane.border_subtitle = "following ▼"
        else:
            pane.border_subtitle = ""

    def _update_header(self) -> None:
        summary = self.app.catalog.cached_job(self.job_id)
        facts = ""
        if summary is None or not summary.checked:  # not summarized yet (or index only)
            facts = " · …"
        else:
            _mark, _style, label = status_mark(summary.status)
            duration = summary.duration_ms
            if duration is None and summary.status == "running" and summary.started_at:
                duration = int(self.app.now() * 1000) - summary.started_at
            # expert and tokens are read after the rest: "…" until then, never "0 tokens"
            expert = "…" if summary.partial else summary.expert
            tokens = "…" if summary.partial else format_tokens(summary.usage.totalTokens)
            # the status first: on a narrow terminal the end of the line is cut
            facts = (
                f" · {label} · {expert} · {summary.steps} steps · {tokens} tokens"
                f" · {format_duration(duration)}"
            )
        # on a narrow terminal the id is cut before the facts are (y copies it whole)
        short = f"job {fit(self.job_id, 10)}{facts}"
        self.query_one(StorageHeader).set_where(f"job {self.job_id}{facts}", short)

    @on(VirtualList.Highlighted, "#events")
    def _event_highlighted(self, event: VirtualList.Highlighted) -> None:
        if self.following and event.index >= len(self.rows) - 1:
            self.new_while_paused = 0  # back at the newest event: following again
        self._update_events_title()
        self._show_detail()
        self._wanted.set()

    @on(VirtualList.Scrolled, "#events")
    def _events_scrolled(self) -> None:
        self._wanted.set()

    @on(VirtualList.Selected, "#events")
    def _event_selected(self) -> None:
        row = self.current_row
        if row is None:
            return
        if row.first.type == "callDelegate":
            self.follow_delegation(row)
        else:
            self.detail.focus()

    def _show_detail(self) -> None:
        row = self.current_row
        detail = self.detail
        if row is None:
            detail.show(None)  # type: ignore[attr-defined]
            return
        bodies = [self.events[m.key] for m in row.metas if m.key in self.events]
        if not bodies:
            detail.show(None)  # type: ignore[attr-defined]
            return
        # a folded stream shows its newest event; the detail assembles the text from all
        # and names the chunks that could not be read
        event = bodies[-1] if row.stream else bodies[0]
        if row.stream:
            bodies += [self.events[m.key] for m in row.unreadable if m.key in self.events]
        detail.show(event, run_events=bodies if row.stream else None)  # type: ignore[attr-defined]
        what = row.stream_label if row.stream else row.first.type
        title = f"detail · {what} · step {row.step}"
        self.query_one("#detail-pane").border_title = title

    # --- navigation ---------------------------------------------------------------------

    def jump_to_step(self, step: int, run_id: str | None = None) -> bool:
        """Put the cursor on the first event of ``step`` (in ``run_id`` if given)."""
        if run_id is not None and run_id in self.run_ids and self.run_choice != ALL_RUNS:
            self.select_run(run_id)
        self._finish_rows()
        for index, row in enumerate(self.rows):
            if row.step == step and (run_id is None or row.run_id == run_id):
                self.events_list.set_cursor(index)
                return True
        for index, row in enumerate(self.rows):  # a filter may hide that run's events
            if row.step >= step:
                self.events_list.set_cursor(index)
                return True
        return False

    def select_run(self, run_id: str) -> None:
        self.run_choice = run_id
        self._show_runs()
        self._rebuild_rows()

    def jump_to_key(self, key: str) -> None:
        self._finish_rows()
        for index, row in enumerate(self.rows):
            if any(m.key == key for m in row.metas):
                self.events_list.set_cursor(index)
                return

    @work(group="delegation")
    async def follow_delegation(self, row: EventRow) -> None:
        """From a callDelegate event to the delegate's run (esc or u comes back)."""
        event = self.events.get(row.key) or await self.app.guarded(
            self.app.catalog.storage.read_event(row.key)
        )
        if not isinstance(event, CallDelegate):
            self.notify("this event cannot be read", severity="error")
            return
        call_ids = {call.id for call in event.toolCalls}
        delegate = next((r for r in self.runs if r.delegated_by_tool_call in call_ids), None)
        if delegate is None or not delegate.events:
            self.notify("the delegate's run has not started yet", severity="warning")
            return
        self._jumps.append((self.run_choice, row.key))
        if self.run_choice != ALL_RUNS:
            self.select_run(delegate.run_id)
        self.jump_to_key(delegate.events[0].key)
        self.notify(f"delegate {delegate.expert} (run {delegate.run_id}) · esc returns", timeout=3)

    def action_to_caller(self) -> None:
        """From a delegate's run back to the callDelegate that started it."""
        if self._jumps:
            self._go_back()
            return
        row = self.current_row
        run = next((r for r in self.runs if row and r.run_id == row.run_id), None)
        if run is None or not run.delegated_by_run:
            self.notify("this run was not started by a delegation", timeout=2)
            return
        caller = next((r for r in self.runs if r.run_id == run.delegated_by_run), None)
        if caller is None:
            return
        if self.run_choice != ALL_RUNS:
            self.select_run(caller.run_id)
        calls = [m for m in caller.events if m.type == "callDelegate"]
        before = [m for m in calls if m.timestamp <= run.events[0].timestamp] if run.events else []
        target = (before or calls or caller.events)[-1:]
        if target:
            self.jump_to_key(target[0].key)

    def _go_back(self) -> None:
        run_choice, key = self._jumps.pop()
        if run_choice != self.run_choice:
            self.select_run(run_choice)
        self.jump_to_key(key)

    def action_back(self) -> None:
        if self.focused is self.detail or (
            self.focused is not None and self.detail in self.focused.ancestors
        ):
            self.events_list.focus()
        elif self._jumps:
            self._go_back()
        else:
            self.dismiss()

    def action_focus_next_pane(self) -> None:
        self._cycle_pane(1)

    def action_focus_previous_pane(self) -> None:
        self._cycle_pane(-1)

    def _cycle_pane(self, step: int) -> None:
        panes = [self.runs_list, self.events_list, self.detail]
        focused = self.focused
        current = next(
            (
                i
                for i, pane in enumerate(panes)
                if focused is pane or (focused is not None and pane in focused.ancestors)
            ),
            1,
        )
        target = panes[(current + step) % len(panes)]
        if target.focusable:
            target.focus()
        else:  # a composite detail: focus its first focusable part
            focusable = [w for w in target.query("*") if w.focusable]
            if focusable:
                focusable[0].focus()

    # --- follow -------------------------------------------------------------------------

    def action_follow(self) -> None:
        """Pin the list to the newest event (again); pressed while pinned, stop following."""
        if self.following and not self._paused:
            self.following = False
        else:
            self.following = True
            self.new_while_paused = 0
            self._finish_rows()
            self.events_list.set_cursor(len(self.rows) - 1)
        self._update_events_title()
        self.notify("following" if self.following else "stopped following", timeout=2)

    # --- filters ------------------------------------------------------------------------

    def action_toggle_filter(self, name: str) -> None:
        self.filters ^= {name}
        self._rebuild_rows(keep_cursor=True)

    def action_clear_filters(self) -> None:
        self.filters.clear()
        self.step_range = None
        self.text_filter = ""
        self._rebuild_rows(keep_cursor=True)

    def action_step_range(self) -> None:
        self._ask("steps", "steps: 5, >5, >=5, <5, <=5 or 1-10 (empty: all)")

    def action_text_filter(self) -> None:
        self._ask("text", "filter events by type or text (empty: all)")

    def _ask(self, what: str, placeholder: str) -> None:
        self._asking = what
        field = self.query_one("#job-input", Input)
        field.placeholder = placeholder
        field.value = ""
        self.add_class("asking")
        field.focus()

    @on(Input.Submitted, "#job-input")
    def _answered(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if self._asking == "steps":
            steps = parse_step_range(value) if value else None
            if value and steps is None:
                self.notify(f"not a step range: {value!r}", severity="error")
                return
            self.step_range = steps
        elif self._asking == "text":
            self.text_filter = value
        self._close_input()
        self._rebuild_rows(keep_cursor=True)

    def _close_input(self) -> None:
        self._asking = None
        self.remove_class("asking")
        self.events_list.focus()

    def on_key(self, event) -> None:  # type: ignore[no-untyped-def]
        if event.key == "escape" and self._asking:
            event.stop()
            self._close_input()

    # --- checkpoints --------------------------------------------------------------------

    def _checkpoint_rows(self) -> list[int]:
        self._finish_rows()
        return [i for i, row in enumerate(self.rows) if row.first.type in CHECKPOINT_EVENT_TYPES]

    def action_previous_checkpoint(self) -> None:
        before = [i for i in self._checkpoint_rows() if i < self.events_list.cursor]
        if before:
            self.events_list.set_cursor(before[-1])

    def action_next_checkpoint(self) -> None:
        after = [i for i in self._checkpoint_rows() if i > self.events_list.cursor]
        if after:
            self.events_list.set_cursor(after[0])

    def action_checkpoint(self) -> None:
        """Open the checkpoint of the step under the cursor (known from the listings)."""
        row = self.current_row
        if row is None:
            return
        refs = checkpoint_refs_of(self.runs)
        same_run = [r for r in refs if r.run_id == row.run_id and r.step == row.step]
        ref = same_run[-1] if same_run else checkpoint_ref_for_step(refs, row.step)
        if ref is None:
            self.notify(f"no checkpoint stored for step {row.step} yet", severity="warning")
            return
        if ref.step != row.step:
            self.notify(f"step {row.step} has no checkpoint yet: step {ref.step}'s", timeout=3)
        from .checkpoint import CheckpointScreen

        screen = CheckpointScreen(self.app.catalog, self.job_id, ref, refs=refs)
        self.app.push_screen(screen, self._back_from_checkpoint)

    def _back_from_checkpoint(self, result: tuple[str, int] | None) -> None:
        if result:
            run_id, step = result
            self.jump_to_step(step, run_id)
            self.events_list.focus()

    # --- copy, export, retry ------------------------------------------------------------

    def _focused_on_runs(self) -> bool:
        return self.focused is self.runs_list

    def action_copy_id(self) -> None:
        """Copy ``JOB/RUN#STEP`` (what ``perstack-tui open`` takes)."""
        if self._focused_on_runs():
            if self.run_choice == ALL_RUNS:
                self.app.copy_text(self.job_id, "job id")
            else:
                self.app.copy_text(f"{self.job_id}/{self.run_choice}", "run id")
            return
        row = self.current_row
        if row is None:
            self.app.copy_text(self.job_id, "job id")
            return
        self.app.copy_text(f"{self.job_id}/{row.run_id}#{row.step}", "event id")

    def action_copy_json(self) -> None:
        from ...models import mask_secrets

        row = self.current_row
        body = self.events.get(row.key) if row else None
        if body is None:
            self.notify("nothing read to copy yet", severity="warning")
        elif isinstance(body, Unreadable):
            self.app.copy_text(body.preview or body.reason, "unreadable file")
        else:
            self.app.copy_json(mask_secrets(body.to_json_dict()), f"{body.type} JSON")

    def action_export(self) -> None:
        """Export the selected event (or run, when the runs pane has focus, or the job)."""
        if self._focused_on_runs():
            if self.run_choice == ALL_RUNS:
                self.app.export(self.job_id)
            else:
                run = next(r for r in self.runs if r.run_id == self.run_choice)
                self.app.export(self.job_id, [m.key for m in run.events])
            return
        row = self.current_row
        if row is not None:
            self.app.export(self.job_id, [m.key for m in row.metas])

    def action_retry(self) -> None:
        self.app.storage_state = "ok"
        self.load()


def _open_stream(rows: list[EventRow], run_id: str, kind: str) -> EventRow | None:
    """The stream row of this run and kind still open among the last rows, if any."""
    if rows:
        row = rows[-1]  # most often the row above
        if row.run_id == run_id and row.stream == kind and not row.closed:
            return row
    for row in reversed(rows[-_UNSETTLED:-1]):
        if row.run_id == run_id and row.stream == kind and not row.closed:
            return row
    return None


def _events_with_runs(runs: Iterable[RunSummary]) -> Iterator[tuple[EventMeta, str]]:
    """Every event of the runs with its run id, by timestamp, then key, as they are
    reached: each run's list is in that order already, and is parsed as it is read."""
    with_events = [zip(run.events, repeat(run.run_id)) for run in runs if run.events]
    if len(with_events) == 1:
        return with_events[0]
    return merge(*with_events, key=_pair_by_time)


def _pair_by_time(pair: tuple[EventMeta, str]) -> tuple[int, str]:
    return by_time(pair[0])


def _meta_of(key: str) -> EventMeta | None:
    """What the listing would say of the event stored under ``key`` (None if not an event)."""
    name = keys.parse_key(key).event
    if name is None:
        return None
    return EventMeta(timestamp=name.timestamp, stepNumber=name.step_number, type=name.type, key=key)


def _meta_type(key: str) -> str:
    name = keys.parse_key(key).event
    return name.type if name is not None else ""


def _note_delegation(run: RunSummary, event: RunEvent) -> None:
    checkpoint = event_checkpoint(event)
    if checkpoint is not None and checkpoint.delegatedBy and not run.delegated_by_run:
        run.delegated_by_run = checkpoint.delegatedBy.runId
        run.delegated_by_tool_call = checkpoint.delegatedBy.toolCallId


def _category(event_type: str, body: RunEvent | Unreadable | None) -> str:
    if body is None:
        return type_category(event_type)
    return event_category(body)
