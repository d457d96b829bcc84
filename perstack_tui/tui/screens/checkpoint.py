"""A job's checkpoint in full: summary and conversation, raw JSON, diff, list by step.

``CheckpointScreen(catalog, job_id, ref_or_id, refs=None)``. Keys: ``[`` ``]`` previous /
next checkpoint, ``d`` diff against the previous one, ``l`` the job's checkpoints by step,
``r`` raw JSON, ``e``/``enter`` back to the events of its step (dismisses with
``(run_id, step)``), ``esc`` back (dismisses with None).

The checkpoints come from two places, both known from listings alone: the events that
carry one (``catalog.checkpoint_refs``) and the files under ``checkpoints/`` (the CLI keeps
the latest state of each checkpoint id there). Checkpoints embed the whole history, so one
is read only when it is shown or diffed: a file is placed by step once it is read, or once
a shown event names its id (the same checkpoint, or the next step's); until then the list
shows it as "step ?", and opening the list reads those few. Reading and parsing happen in
threads, so a 10 MB checkpoint never freezes the app.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import ContentSwitcher, LoadingIndicator, OptionList, Static
from textual.widgets.option_list import Option

from ... import keys
from ...catalog import Catalog, CheckpointRef
from ...describe import event_checkpoint
from ...diff import diff_checkpoints, diff_lines
from ...models import Checkpoint, Unreadable, parse_event, parse_model
from ...storage.base import StorageError
from ..pager import open_in_editor, open_in_pager
from ..widgets.event_view import (
    MAX_MESSAGES,
    blocks_text,
    raw_json,
    render_checkpoint,
    render_failure,
    render_messages,
    render_unreadable,
)
from ..widgets.footer import Footer
from ..widgets.header import StorageHeader
from ..widgets.json_view import JsonView

FILE_SOURCE = "checkpoint file"
#: the step of a checkpoint file that cannot be read (listed last, marked unreadable)
UNKNOWN_STEP = -1
#: parsed checkpoints kept while browsing (they can be megabytes each)
CACHE_SIZE = 8
#: checkpoint files read at once when the list places them by step
FILE_READS = 4


@dataclass(eq=False)
class CheckpointEntry:
    """One checkpoint of the job: where it is stored and what is known about it so far.

    Entries are compared by identity: facts are filled in as checkpoints are read.
    """

    step: int
    run_id: str
    key: str  # the carrying event's key, or the checkpoint file's key
    source: str  # the carrying event's type, or FILE_SOURCE
    timestamp: int | None = None
    status: str | None = None  # known once read (or once its file is read)
    checkpoint_id: str | None = None

    @property
    def known_step(self) -> bool:
        return self.step != UNKNOWN_STEP

    @property
    def is_file(self) -> bool:
        return self.source == FILE_SOURCE

    @property
    def unread_file(self) -> bool:
        """A checkpoint file not read yet (the list reads those when it opens)."""
        return self.is_file and self.status is None

    @property
    def unplaced(self) -> bool:
        """A checkpoint file whose step is unknown until it is read."""
        return self.unread_file and not self.known_step

    @property
    def sort_key(self) -> tuple[int, int, str]:
        step = self.step if self.known_step else 1 << 62
        return step, self.timestamp if self.timestamp is not None else 1 << 62, self.key

    def label(self) -> Text:
        line = Text(f"step {self.step if self.known_step else '?':>4}  ", "bold")
        if self.unplaced:
            line.append(f"{'(not read yet)':<27}", "dim italic")
        else:
            style = "bold red" if self.status == "unreadable" else "cyan" if self.status else "dim"
            line.append(f"{self.status or '?':<27}", style)
        line.append(f"{self.source:<27}", "dim")
        if self.run_id:
            line.append(f"run {self.run_id}", "dim")
        elif self.checkpoint_id:
            line.append(f"id {self.checkpoint_id}", "dim")
        return line


#: the status of the checkpoint an event of this type carries (a fact of the format), so
#: the list can show it before the checkpoint is read
_STATUS_AFTER = {
    "continueToNextStep": "proceeding",
    "completeRun": "completed",
    "stopRunByError": "stoppedByError",
    "stopRunByDelegate": "stoppedByDelegate",
    "stopRunByInteractiveTool": "stoppedByInteractiveTool",
    "stopRunByExceededMaxSteps": "stoppedByExceededMaxSteps",
}


def _entry_from_ref(ref: CheckpointRef) -> CheckpointEntry:
    return CheckpointEntry(
        ref.step,
        ref.run_id,
        ref.key,
        ref.event_type,
        ref.timestamp,
        status=_STATUS_AFTER.get(ref.event_type),
    )


def _file_entry(job_id: str, checkpoint_id: str) -> CheckpointEntry:
    key = keys.checkpoint_key(job_id, checkpoint_id)
    return CheckpointEntry(UNKNOWN_STEP, "", key, FILE_SOURCE, checkpoint_id=checkpoint_id)


@dataclass(frozen=True)
class _Parsed:
    """A checkpoint as read from its file or event, and the next step's, if the event names it."""

    checkpoint: Checkpoint | Unreadable
    next: Checkpoint | None = None


def _parse(raw: bytes, key: str) -> _Parsed:
    """Parse a checkpoint file or a checkpoint-carrying event (runs in a thread)."""
    if keys.parse_key(key).kind == "checkpoint":
        return _Parsed(parse_model(Checkpoint, raw, key))
    event = parse_event(raw, key)
    if isinstance(event, Unreadable):
        return _Parsed(event)
    checkpoint = event_checkpoint(event)
    if checkpoint is None:
        return _Parsed(Unreadable(key=key, reason=f"a {event.type} event carries no checkpoint"))
    following = getattr(event, "nextCheckpoint", None)
    return _Parsed(checkpoint, following if isinstance(following, Checkpoint) else None)


def _render(checkpoint: Checkpoint | Unreadable, limit: int) -> list[Text]:
    try:
        if isinstance(checkpoint, Unreadable):
            return render_unreadable(checkpoint)
        return render_checkpoint(checkpoint, limit=limit)
    except Exception as error:  # a shape nobody foresaw must not take the app down
        return render_failure(error)


def _raw(checkpoint: Checkpoint | Unreadable) -> Any:
    """What the raw view shows: the checkpoint as JSON, masked (a copy of the whole
    checkpoint: built only when the raw view is shown)."""
    try:
        return raw_json(checkpoint)
    except Exception as error:  # a shape nobody foresaw must not take the app down
        return {"error": repr(error)}


def _render_diff(
    previous: Checkpoint | Unreadable | None, current: Checkpoint, *, full: bool = False
) -> list[Text]:
    try:
        return _diff_blocks(previous, current, full=full)
    except Exception as error:  # a shape nobody foresaw must not take the app down
        return render_failure(error)


def _diff_blocks(
    previous: Checkpoint | Unreadable | None, current: Checkpoint, *, full: bool = False
) -> list[Text]:
    if isinstance(previous, Unreadable):
        return [
            Text("The previous checkpoint is unreadable:", "bold red"),
            *render_unreadable(previous),
        ]
    diff = diff_checkpoints(previous, current)
    blocks = [Text(line, "bold" if i == 0 else "") for i, line in enumerate(diff_lines(diff))]
    for line in blocks:
        line.highlight_words(["Delegation added:"], "bold yellow")
        line.highlight_words(["Delegation resolved:"], "bold green")
        line.highlight_words(["Status:"], "bold")
    if diff.new_messages:
        blocks.append(Text(f"── New messages ({len(diff.new_messages)}) ", "bold underline"))
        blocks.extend(render_messages(diff.new_messages, full=full))
    return blocks


class CheckpointScreen(Screen[tuple[str, int] | None]):
    """One checkpoint of a job, with its neighbours a key away."""

    DEFAULT_CSS = """
    CheckpointScreen > #cp-title { height: 1; background: $panel; padding: 0 1; }
    CheckpointScreen { layers: base loading; }
    CheckpointScreen > #cp-loading {
        layer: loading; position: absolute; offset: 0 2; width: 100%; height: 1; display: none;
    }
    CheckpointScreen.-loading > #cp-loading { display: block; }
    CheckpointScreen > ContentSwitcher { height: 1fr; }
    CheckpointScreen #cp-readable, CheckpointScreen #cp-diff { padding: 0 1; }
    CheckpointScreen #cp-list { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape", "back", "back", tooltip="back (from the list or diff, else to the job)"),
        Binding("left_square_bracket", "previous", "prev", tooltip="previous checkpoint"),
        Binding("right_square_bracket", "next", "next", tooltip="next checkpoint"),
        Binding("d", "diff", "diff", tooltip="diff against the previous checkpoint"),
        Binding("l", "list", "list", tooltip="the job's checkpoints by step"),
        Binding("r", "raw", "raw", tooltip="raw JSON / readable"),
        Binding("e", "events", "events of step", tooltip="back to the events of its step"),
        Binding("enter", "events", "events of step", show=False),
        Binding(
            "m",
            "more_messages",
            "more messages",
            show=False,
            tooltip="show more of the conversation",
        ),
        Binding("o", "open", "open", tooltip="open it whole in a pager (raw: the selected value)"),
        Binding("O", "open_in_editor", "open in $EDITOR", show=False),
        Binding("R,ctrl+r", "retry", "retry", show=False, tooltip="retry after a storage error"),
    ]

    def __init__(
        self,
        catalog: Catalog,
        job_id: str,
        ref_or_id: CheckpointRef | Checkpoint | str,
        *,
        refs: list[CheckpointRef] | None = None,
    ) -> None:
        """``ref_or_id``: a catalog ``CheckpointRef`` (what the job screen passes), an event
        or checkpoint key, a checkpoint id, or a :class:`Checkpoint` already in hand.
        ``refs``: the job's ``catalog.checkpoint_refs`` if the caller has them (else they
        are listed here)."""
        super().__init__()
        self.catalog = catalog
        self.storage = catalog.storage
        self.job_id = job_id
        self.target = ref_or_id
        self.given_refs = refs
        self.entries: list[CheckpointEntry] = []
        self.current: CheckpointEntry | None = None
        self.checkpoint: Checkpoint | Unreadable | None = None
        #: the checkpoint the raw view holds (it is built when first shown)
        self.raw_shown: Checkpoint | Unreadable | None = None
        self.view = "readable"
        self.is_loading = False
        #: reading the files not placed yet (for the list)
        self.scanning = False
        self.message_limit = MAX_MESSAGES
        self._cache: OrderedDict[str, _Parsed] = OrderedDict()
        self.files_listed = False

    def compose(self) -> ComposeResult:
        yield StorageHeader(f"job {self.job_id} · checkpoints")
        yield Static(Text("Checkpoint", "bold"), id="cp-title")
        yield LoadingIndicator(id="cp-loading")
        with ContentSwitcher(initial="cp-readable"):
            with VerticalScroll(id="cp-readable", can_focus=True):
                yield Static(Text("Loading…", "dim"), id="cp-readable-text")
            yield JsonView(id="cp-raw")
            with VerticalScroll(id="cp-diff", can_focus=True):
                yield Static("", id="cp-diff-text")
            yield OptionList(id="cp-list")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#cp-readable").focus()
        self._set_loading(True)
        self._start()

    # --- storage state (the header shows it) ------------------------------------------------

    def _note_storage(self, error: StorageError | None = None) -> None:
        """Tell the app how the last storage call went (outside PerstackApp, nothing to tell)."""
        app = self.app
        if not hasattr(app, "storage_state"):
            return
        if error is not None:
            app.storage_problem = str(error) or type(error).__name__
            app.storage_state = "error"
        elif app.storage_state == "error":
            app.storage_state = "ok"
            app.storage_problem = ""

    # --- finding the checkpoints ----------------------------------------------------------

    @work(exclusive=True, group="checkpoint-start")
    async def _start(self) -> None:
        refs = self.given_refs
        if refs is None:
            try:
                refs = await self.catalog.checkpoint_refs(self.job_id)
            except StorageError as error:
                self._note_storage(error)
                self._set_loading(False)
                self._show_blocks(
                    [Text(f"Cannot list the checkpoints: {error}  (R retries)", "bold red")]
                )
                return
        if not self.entries:
            self._add([_entry_from_ref(ref) for ref in refs])
        if self.current is None:
            self.current = await self._resolve_target()
        if self.current is not None:
            self._go(self.current)
        else:
            self._set_loading(False)
            self._show_blocks([Text(f"No checkpoint {self.target!r} in job {self.job_id}", "red")])
        await self._list_files()

    async def _resolve_target(self) -> CheckpointEntry | None:
        target = self.target
        if isinstance(target, Checkpoint):
            entry = self._entry_at(target.stepNumber, target.runId)
            if entry is None:
                entry = _file_entry(self.job_id, target.id)
                self._add([entry])
                self._learn(entry, _Parsed(target))
            return entry
        if isinstance(target, CheckpointRef):
            return self._entry_for_key(target.key) or self._add([_entry_from_ref(target)])[0]
        if not isinstance(target, str):
            return None
        if "/" in target:
            parsed = keys.parse_key(target)
            if parsed.kind == "event" and parsed.event is not None:
                name = parsed.event
                entry = CheckpointEntry(
                    name.step_number, parsed.run_id or "", target, name.type, name.timestamp
                )
                return self._entry_for_key(target) or self._add([entry])[0]
            target = parsed.checkpoint_id or target
        return await self._find_by_id(target)

    async def _find_by_id(self, checkpoint_id: str) -> CheckpointEntry | None:
        """A checkpoint id: its file if there is one, else the event that carries it."""
        found = next((e for e in self.entries if e.checkpoint_id == checkpoint_id), None)
        if found is not None:
            return found
        entry = _file_entry(self.job_id, checkpoint_id)
        try:
            await self._read(entry.key)
        except StorageError:  # not a file (only an event carries it), or unreachable
            pass
        else:
            return self._add([entry])[0]
        for entry in reversed(self.entries):  # carried by an event: read them, newest first
            try:
                parsed = await self._read(entry.key)
            except StorageError:
                continue
            self._learn(entry, parsed)
            if entry.checkpoint_id == checkpoint_id:
                return entry
        return None

    def _entry_at(self, step: int, run_id: str) -> CheckpointEntry | None:
        return next((e for e in self.entries if (e.step, e.run_id) == (step, run_id)), None)

    def _entry_for_key(self, key: str) -> CheckpointEntry | None:
        return next((e for e in self.entries if e.key == key), None)

    def _add(self, found: list[CheckpointEntry]) -> list[CheckpointEntry]:
        """Add entries (a key already listed is not added twice); the entries for ``found``."""
        by_key = {e.key: e for e in self.entries}
        added = [by_key.setdefault(entry.key, entry) for entry in found]
        self.entries = list(by_key.values())
        self._fold()
        return added

    async def _list_files(self) -> None:
        """List the checkpoint files (one listing): those no event names yet are unplaced."""
        try:
            ids = await self.storage.list_checkpoint_ids(self.job_id)
        except StorageError as error:
            self._note_storage(error)
            self.notify(f"Cannot list the checkpoint files: {error}", severity="warning")
            return
        self.files_listed = True
        known = {e.checkpoint_id for e in self.entries}
        self._add([_file_entry(self.job_id, i) for i in ids if i not in known])
        # what has been read already places some of them
        for entry in list(self.entries):
            parsed = self._cache.get(entry.key)
            if parsed is not None:
                self._learn(entry, parsed)

    def _learn(self, entry: CheckpointEntry, parsed: _Parsed) -> None:
        """Note what reading ``entry`` told: its step, status and id, and the next step's id."""
        checkpoint = parsed.checkpoint
        if isinstance(checkpoint, Checkpoint):
            if entry.is_file:
                entry.step, entry.run_id = checkpoint.stepNumber, checkpoint.runId
            entry.status, entry.checkpoint_id = checkpoint.status, checkpoint.id
        else:
            entry.status = "unreadable"
        following = parsed.next
        if following is not None:
            for other in self.entries:
                if other.unplaced and other.checkpoint_id == following.id:
                    other.step, other.run_id = following.stepNumber, following.runId
        self._fold()

    def _fold(self) -> None:
        """One entry per checkpoint: a file goes into the event that carries the same one.

        The same checkpoint id, or the same step and run (the file keeps the latest state
        of its id); the event's entry takes the file's status if it was not read itself.
        """
        events = [e for e in self.entries if not e.is_file]
        by_id = {e.checkpoint_id: e for e in events if e.checkpoint_id}
        by_slot = {(e.step, e.run_id): e for e in events}
        kept = list(events)
        for entry in (e for e in self.entries if e.is_file):
            twin = by_id.get(entry.checkpoint_id) or (
                by_slot.get((entry.step, entry.run_id)) if entry.known_step else None
            )
            if twin is None:
                kept.append(entry)
                continue
            if twin.status is None and entry.status not in (None, "unreadable"):
                twin.status, twin.checkpoint_id = entry.status, entry.checkpoint_id
            if self.current is entry:
                self.current = twin
        self.entries = sorted(kept, key=lambda e: e.sort_key)
        self._update_title()
        if self.view == "list":
            self._fill_list()

    @work(exclusive=True, group="checkpoint-files")
    async def _place_files(self) -> None:
        """Read the files not read yet (a few at once): the list shows them by step, with
        their status. Files are what no carrying event holds, so there are few of them."""
        unread = [e for e in self.entries if e.unread_file]
        if not unread:
            return
        self.scanning = True
        self._update_title()
        limit = asyncio.Semaphore(FILE_READS)

        async def place(entry: CheckpointEntry) -> None:
            async with limit:
                try:
                    parsed = await self._read(entry.key, remember=False)
                except StorageError as error:
                    parsed = _Parsed(Unreadable(key=entry.key, reason=str(error)))
                self._learn(entry, parsed)

        try:
            await asyncio.gather(*(place(e) for e in unread))
        finally:
            self.scanning = False
            self._update_title()

    async def _read(self, key: str, *, remember: bool = True) -> _Parsed:
        """A checkpoint by the key holding it (parsed in a thread, a few kept)."""
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        try:
            raw = await self.storage.read_bytes(key)
        except StorageError as error:
            self._note_storage(error)
            raise
        self._note_storage()
        parsed = await asyncio.to_thread(_parse, raw, key)
        if remember:
            self._cache[key] = parsed
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return parsed

    async def _load(self, entry: CheckpointEntry) -> Checkpoint | Unreadable:
        """Read ``entry`` (learning its step and status), or say why it cannot be read."""
        target = self.target
        if isinstance(target, Checkpoint) and (
            target.id == entry.checkpoint_id
            or (target.stepNumber, target.runId) == (entry.step, entry.run_id)
        ):
            return target
        try:
            parsed = await self._read(entry.key)
        except StorageError as error:
            return Unreadable(key=entry.key, reason=str(error))
        self._learn(entry, parsed)
        return parsed.checkpoint

    # --- showing one ----------------------------------------------------------------------

    def _set_loading(self, loading: bool) -> None:
        self.is_loading = loading
        self.set_class(loading, "-loading")

    def _show_blocks(self, blocks: list[Text]) -> None:
        self.query_one("#cp-readable-text", Static).update(Group(*blocks))

    def _go(self, entry: CheckpointEntry) -> None:
        """Show ``entry`` (current at once, so quick repeated ``]`` presses add up)."""
        self.current = entry
        self._set_loading(True)
        self._update_title()
        self._open(entry)

    @work(exclusive=True, group="checkpoint-open")
    async def _open(self, entry: CheckpointEntry) -> None:
        checkpoint = await self._load(entry)
        blocks = await asyncio.to_thread(_render, checkpoint, self.message_limit)
        self.checkpoint = checkpoint
        self._show_blocks(blocks)
        self.query_one("#cp-readable", VerticalScroll).scroll_home(animate=False)
        self._set_loading(False)
        self._update_title()
        if self.view == "diff":
            self._show_diff()
        elif self.view == "raw":
            self._show_raw()

    @work(exclusive=True, group="checkpoint-raw")
    async def _show_raw(self) -> None:
        """Fill the raw view with the shown checkpoint, unless it holds it already."""
        checkpoint, entry = self.checkpoint, self.current
        if checkpoint is None or entry is None or checkpoint is self.raw_shown:
            return
        raw = await asyncio.to_thread(_raw, checkpoint)
        if checkpoint is self.checkpoint:
            self.query_one(JsonView).load(raw, f"checkpoint step {entry.step}")
            self.raw_shown = checkpoint

    def _index(self) -> int:
        return next((i for i, e in enumerate(self.entries) if e is self.current), -1)

    def _placed(self) -> list[CheckpointEntry]:
        """The entries ``[`` and ``]`` walk: every one but the files not placed yet."""
        return [e for e in self.entries if not e.unplaced or e is self.current]

    def _update_title(self) -> None:
        entry = self.current
        title = Text("Checkpoint ", "bold")
        if entry is not None:
            placed = self._placed()
            position = next((i for i, e in enumerate(placed) if e is entry), -1) + 1
            title.append(f"step {entry.step if entry.known_step else '?'}", "bold")
            title.append(f" ({position} of {len(placed)})", "dim")
            checkpoint = self.checkpoint
            if isinstance(checkpoint, Checkpoint):
                title.append(f"  {checkpoint.status}", "cyan")
                if checkpoint.expert is not None:
                    title.append(f"  {checkpoint.expert.key}", "")
            title.append(f"  {entry.source}", "dim")
            if entry.run_id:
                title.append(f"  run {entry.run_id[:8]}", "dim")
            unplaced = sum(1 for e in self.entries if e.unplaced and e is not entry)
            if self.scanning:
                title.append("  · reading files…", "yellow")
            elif unplaced:
                files = f"{unplaced} unread file{'s' * (unplaced > 1)}"
                title.append(f"  · {files} (l)", "dim")
        self.query_one("#cp-title", Static).update(title)

    def _switch(self, view: str) -> None:
        self.view = view
        self.query_one(ContentSwitcher).current = f"cp-{view}"
        target = self.query_one(JsonView).tree if view == "raw" else self.query_one(f"#cp-{view}")
        target.focus()
        if view == "raw":
            self._show_raw()

    # --- actions --------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.view in ("list", "diff"):
            self._switch("readable")
        else:
            self.dismiss(None)

    def _step_by(self, direction: int) -> None:
        placed = self._placed()
        index = next((i for i, e in enumerate(placed) if e is self.current), -1)
        if index < 0:
            return
        new = index + direction
        if 0 <= new < len(placed):
            self._go(placed[new])
        else:
            self.notify("no " + ("earlier" if direction < 0 else "later") + " checkpoint")

    def action_previous(self) -> None:
        self._step_by(-1)

    def action_next(self) -> None:
        self._step_by(+1)

    def action_raw(self) -> None:
        self._switch("readable" if self.view == "raw" else "raw")

    def action_diff(self) -> None:
        if self.view == "diff":
            self._switch("readable")
            return
        self._switch("diff")
        self._show_diff()

    @work(exclusive=True, group="checkpoint-diff")
    async def _show_diff(self) -> None:
        text = self.query_one("#cp-diff-text", Static)
        current = self.checkpoint
        if not isinstance(current, Checkpoint):
            text.update(Text("No readable checkpoint to compare", "red"))
            return
        previous = await self._previous_checkpoint()
        text.update(Group(*await asyncio.to_thread(_render_diff, previous, current)))

    async def _previous_checkpoint(self) -> Checkpoint | Unreadable | None:
        index = self._index()
        before = [e for e in self.entries[: max(index, 0)] if e.known_step]
        return await self._load(before[-1]) if before else None

    async def _full_text(self) -> tuple[str, str] | None:
        """The shown checkpoint (or diff) whole, as plain text, and a title for it."""
        checkpoint, entry = self.checkpoint, self.current
        if checkpoint is None or entry is None:
            return None
        title = f"checkpoint step {entry.step if entry.known_step else '?'}"
        if isinstance(checkpoint, Unreadable):
            blocks = render_unreadable(checkpoint)
        elif self.view == "diff":
            previous = await self._previous_checkpoint()
            blocks = await asyncio.to_thread(_render_diff, previous, checkpoint, full=True)
            title = f"diff to {title}"
        else:
            blocks = await asyncio.to_thread(render_checkpoint, checkpoint, full=True)
        return title, blocks_text(blocks)

    async def action_open(self) -> None:
        """The checkpoint (or diff) whole in a pager; in the raw view, the selected value."""
        if self.view == "raw":
            await self.query_one(JsonView).action_open()
            return
        found = await self._full_text()
        if found is not None:
            open_in_pager(self.app, *found)

    async def action_open_in_editor(self) -> None:
        if self.view == "raw":
            await self.query_one(JsonView).action_open_in_editor()
            return
        found = await self._full_text()
        if found is not None:
            await open_in_editor(self.app, found[1])

    def action_list(self) -> None:
        if self.view == "list":
            self._switch("readable")
            return
        self._fill_list()
        self._switch("list")
        if any(e.unread_file for e in self.entries):
            self.scanning = True  # at once: the title says so before the worker starts
            self._place_files()

    def _fill_list(self) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([Option(e.label(), id=str(i)) for i, e in enumerate(self.entries)])
        index = self._index()
        if index >= 0:
            options.highlighted = index

    @on(OptionList.OptionSelected, "#cp-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._switch("readable")
        self._go(self.entries[int(event.option.id or 0)])

    def action_events(self) -> None:
        """Back to the events of this checkpoint's step (the run that stores it)."""
        entry = self.current
        if entry is None:
            return
        if not entry.known_step:
            self.notify("This checkpoint is unreadable: its step is unknown", severity="warning")
            return
        self.dismiss((entry.run_id, entry.step))

    def action_retry(self) -> None:
        """After a storage error: list and read again."""
        self._note_storage()
        self._set_loading(True)
        self._start()

    def action_more_messages(self) -> None:
        if self.current is not None and self.view == "readable":
            self.message_limit += MAX_MESSAGES
            self._go(self.current)
