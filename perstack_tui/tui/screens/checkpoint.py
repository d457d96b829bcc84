"""A job's checkpoint in full: summary and conversation, raw JSON, diff, list by step.

``CheckpointScreen(catalog, job_id, ref_or_id, refs=None)``. Keys: ``[`` ``]`` previous /
next checkpoint, ``d`` diff against the previous one, ``l`` the job's checkpoints by step,
``r`` raw JSON, ``e``/``enter`` back to the events of its step (dismisses with
``(run_id, step)``), ``esc`` back (dismisses with None).

The checkpoints come from two places: the events that carry one (``catalog.checkpoint_refs``,
listings only) and the files under ``checkpoints/`` (read in the background to learn their
step; the CLI keeps only the latest state of each id there). Reading and parsing happen
in threads, so a 10 MB checkpoint never freezes the app.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, LoadingIndicator, OptionList, Static
from textual.widgets.option_list import Option

from ... import keys
from ...catalog import Catalog
from ...describe import event_checkpoint
from ...diff import diff_checkpoints, diff_lines
from ...models import Checkpoint, Unreadable, parse_event, parse_model
from ...storage.base import StorageError
from ..widgets.event_view import (
    MAX_MESSAGES,
    raw_json,
    render_checkpoint,
    render_failure,
    render_messages,
    render_unreadable,
)
from ..widgets.json_view import JsonView

FILE_SOURCE = "checkpoint file"
#: the step of a checkpoint file that cannot be read (listed last, marked unreadable)
UNKNOWN_STEP = -1
#: parsed checkpoints kept while browsing (they can be megabytes each)
CACHE_SIZE = 8


@dataclass(frozen=True)
class CheckpointEntry:
    """One checkpoint of the job: where it is stored and what the listing tells about it."""

    step: int
    run_id: str
    key: str  # the carrying event's key, or the checkpoint file's key
    source: str  # the carrying event's type, or FILE_SOURCE
    timestamp: int | None = None
    status: str | None = None  # known for files once read
    checkpoint_id: str | None = None

    @property
    def known_step(self) -> bool:
        return self.step != UNKNOWN_STEP

    @property
    def sort_key(self) -> tuple[int, int, str]:
        step = self.step if self.known_step else 1 << 62
        return step, self.timestamp if self.timestamp is not None else 1 << 62, self.key

    @property
    def slot(self) -> tuple[int, str]:
        """One entry per step and run; every unreadable file is its own."""
        return (self.step, self.run_id) if self.known_step else (self.step, self.key)

    def label(self) -> Text:
        line = Text(f"step {self.step if self.known_step else '?':>4}  ", "bold")
        style = "bold red" if self.status == "unreadable" else "cyan" if self.status else "dim"
        line.append(f"{self.status or '?':<26}", style)
        line.append(f"{self.source:<22}", "dim")
        line.append(f"run {self.run_id}", "dim")
        return line


def _entry_from_ref(ref: Any) -> CheckpointEntry:
    """A catalog ``CheckpointRef`` (step, run_id, key, event_type, timestamp) as an entry."""
    return CheckpointEntry(
        step=ref.step,
        run_id=ref.run_id,
        key=ref.key,
        source=getattr(ref, "event_type", "event"),
        timestamp=getattr(ref, "timestamp", None),
    )


def _checkpoint_from_bytes(raw: bytes, key: str) -> Checkpoint | Unreadable:
    """Parse a checkpoint file or a checkpoint-carrying event (runs in a thread)."""
    if keys.parse_key(key).kind == "checkpoint":
        return parse_model(Checkpoint, raw, key)
    event = parse_event(raw, key)
    if isinstance(event, Unreadable):
        return event
    checkpoint = event_checkpoint(event)
    if checkpoint is None:
        return Unreadable(key=key, reason=f"a {event.type} event carries no checkpoint")
    return checkpoint


@dataclass
class _Rendered:
    blocks: list[Text]
    raw: Any


def _render(checkpoint: Checkpoint | Unreadable, limit: int) -> _Rendered:
    try:
        if isinstance(checkpoint, Unreadable):
            return _Rendered(render_unreadable(checkpoint), raw_json(checkpoint))
        return _Rendered(render_checkpoint(checkpoint, limit=limit), raw_json(checkpoint))
    except Exception as error:  # a shape nobody foresaw must not take the app down
        return _Rendered(render_failure(error), {"error": repr(error)})


def _render_diff(previous: Checkpoint | Unreadable | None, current: Checkpoint) -> list[Text]:
    try:
        return _diff_blocks(previous, current)
    except Exception as error:  # a shape nobody foresaw must not take the app down
        return render_failure(error)


def _diff_blocks(previous: Checkpoint | Unreadable | None, current: Checkpoint) -> list[Text]:
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
        blocks.extend(render_messages(diff.new_messages))
    return blocks


class CheckpointScreen(Screen[tuple[str, int] | None]):
    """One checkpoint of a job, with its neighbours a key away."""

    DEFAULT_CSS = """
    CheckpointScreen > #cp-title { height: 1; background: $panel; padding: 0 1; }
    CheckpointScreen { layers: base loading; }
    CheckpointScreen > #cp-loading {
        layer: loading; position: absolute; offset: 0 1; width: 100%; height: 1; display: none;
    }
    CheckpointScreen.-loading > #cp-loading { display: block; }
    CheckpointScreen > ContentSwitcher { height: 1fr; }
    CheckpointScreen #cp-readable, CheckpointScreen #cp-diff { padding: 0 1; }
    CheckpointScreen #cp-list { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("left_square_bracket", "previous", "prev"),
        Binding("right_square_bracket", "next", "next"),
        Binding("d", "diff", "diff"),
        Binding("l", "list", "list"),
        Binding("r", "raw", "raw"),
        Binding("e", "events", "events of step"),
        Binding("enter", "events", "events of step", show=False),
        Binding("m", "more_messages", "more messages", show=False),
    ]

    def __init__(
        self,
        catalog: Catalog,
        job_id: str,
        ref_or_id: Any,
        *,
        refs: list[Any] | None = None,
    ) -> None:
        """``ref_or_id``: a catalog ``CheckpointRef``, an event or checkpoint key, a
        checkpoint id, or a :class:`Checkpoint` already in hand. ``refs``: the job's
        ``catalog.checkpoint_refs`` if the caller has them (else they are listed here)."""
        super().__init__()
        self.catalog = catalog
        self.storage = catalog.storage
        self.job_id = job_id
        self.target = ref_or_id
        self.given_refs = refs
        self.entries: list[CheckpointEntry] = []
        self.current: CheckpointEntry | None = None
        self.checkpoint: Checkpoint | Unreadable | None = None
        self.view = "readable"
        self.is_loading = False
        self.scanning = False
        self.message_limit = MAX_MESSAGES
        self._cache: OrderedDict[str, Checkpoint | Unreadable] = OrderedDict()

    def compose(self) -> ComposeResult:
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

    # --- finding the checkpoints ----------------------------------------------------------

    @work(group="checkpoint-start")
    async def _start(self) -> None:
        refs = self.given_refs
        if refs is None:
            try:
                refs = await self.catalog.checkpoint_refs(self.job_id)
            except StorageError as error:
                self._set_loading(False)
                self._show_blocks([Text(f"Cannot list the checkpoints: {error}", "bold red")])
                return
        self._merge([_entry_from_ref(ref) for ref in refs])
        self.current = await self._resolve_target()
        if self.current is not None:
            self._merge([self.current])
            self._go(self.current)
        else:
            self._set_loading(False)
            self._show_blocks([Text(f"No checkpoint {self.target!r} in job {self.job_id}", "red")])
        self._scan_files()

    async def _resolve_target(self) -> CheckpointEntry | None:
        target = self.target
        if isinstance(target, Checkpoint):
            return self._entry_for_checkpoint(target) or self._file_entry(target)
        if hasattr(target, "key") and hasattr(target, "step"):
            return _entry_from_ref(target)
        if not isinstance(target, str):
            return None
        if "/" in target:
            parsed = keys.parse_key(target)
            if parsed.kind == "event" and parsed.event is not None:
                found = next((e for e in self.entries if e.key == target), None)
                return found or CheckpointEntry(
                    parsed.event.step_number, parsed.run_id or "", target, parsed.event.type,
                    parsed.event.timestamp,
                )  # fmt: skip
            target = parsed.checkpoint_id or target
        return await self._find_by_id(target)

    async def _find_by_id(self, checkpoint_id: str) -> CheckpointEntry | None:
        """A checkpoint id: its file if there is one, else the event that carries it."""
        key = keys.checkpoint_key(self.job_id, checkpoint_id)
        try:
            checkpoint = await self._read(key)
        except StorageError:  # not a file (only an event carries it), or unreachable
            checkpoint = None
        if isinstance(checkpoint, Checkpoint):
            return self._entry_for_checkpoint(checkpoint) or self._file_entry(checkpoint)
        if isinstance(checkpoint, Unreadable):
            return self._file_entry(checkpoint, key)
        for entry in reversed(self.entries):  # carried by an event: read them, newest first
            try:
                found = await self._read(entry.key)
            except StorageError:
                continue
            if isinstance(found, Checkpoint) and found.id == checkpoint_id:
                return entry
        return None

    def _file_entry(self, checkpoint: Checkpoint | Unreadable, key: str = "") -> CheckpointEntry:
        if isinstance(checkpoint, Unreadable):
            return CheckpointEntry(UNKNOWN_STEP, "", key, FILE_SOURCE, status="unreadable")
        return CheckpointEntry(
            step=checkpoint.stepNumber,
            run_id=checkpoint.runId,
            key=keys.checkpoint_key(self.job_id, checkpoint.id),
            source=FILE_SOURCE,
            status=checkpoint.status,
            checkpoint_id=checkpoint.id,
        )

    def _entry_for_checkpoint(self, checkpoint: Checkpoint) -> CheckpointEntry | None:
        """The listed entry of the same step and run, if any (the event that carried it)."""
        for entry in self.entries:
            if entry.step == checkpoint.stepNumber and entry.run_id == checkpoint.runId:
                return entry
        return None

    def _merge(self, found: list[CheckpointEntry]) -> None:
        """Add entries; one per (step, run): an event's wins over a file with the same facts."""
        by_slot: dict[tuple[int, str], CheckpointEntry] = {e.slot: e for e in self.entries}
        for entry in found:
            slot = entry.slot
            known = by_slot.get(slot)
            if known is None:
                by_slot[slot] = entry
            elif known.source == FILE_SOURCE and entry.source != FILE_SOURCE:
                by_slot[slot] = entry
                if self.current == known:
                    self.current = entry
            elif known.source != FILE_SOURCE and entry.source == FILE_SOURCE and not known.status:
                # the file says the status without reading the (bigger) event
                better = replace(known, status=entry.status, checkpoint_id=entry.checkpoint_id)
                by_slot[slot] = better
                if self.current == known:
                    self.current = better
        self.entries = sorted(by_slot.values(), key=lambda e: e.sort_key)
        self._update_title()
        if self.view == "list":
            self._fill_list()

    @work(group="checkpoint-files")
    async def _scan_files(self) -> None:
        """Read the checkpoint files in the background to place them by step."""
        self.scanning = True
        try:
            ids = await self.storage.list_checkpoint_ids(self.job_id)
            for checkpoint_id in ids:
                key = keys.checkpoint_key(self.job_id, checkpoint_id)
                try:
                    raw = await self.storage.read_bytes(key)
                except StorageError:
                    continue
                checkpoint = await asyncio.to_thread(_checkpoint_from_bytes, raw, key)
                self._merge([self._file_entry(checkpoint, key)])
        except StorageError as error:
            self.notify(f"Cannot list the checkpoint files: {error}", severity="warning")
        finally:
            self.scanning = False
            self._update_title()

    async def _read(self, key: str) -> Checkpoint | Unreadable:
        """A checkpoint by the key holding it (parsed in a thread, a few kept)."""
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        raw = await self.storage.read_bytes(key)
        checkpoint = await asyncio.to_thread(_checkpoint_from_bytes, raw, key)
        self._remember(key, checkpoint)
        return checkpoint

    def _remember(self, key: str, checkpoint: Checkpoint | Unreadable) -> None:
        self._cache[key] = checkpoint
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    async def _load(self, entry: CheckpointEntry) -> Checkpoint | Unreadable:
        target = self.target
        if isinstance(target, Checkpoint) and (entry.step, entry.run_id) == (
            target.stepNumber,
            target.runId,
        ):
            return target
        try:
            return await self._read(entry.key)
        except StorageError as error:
            return Unreadable(key=entry.key, reason=str(error))

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
        rendered = await asyncio.to_thread(_render, checkpoint, self.message_limit)
        self.checkpoint = checkpoint
        if isinstance(checkpoint, Checkpoint) and entry.status is None:
            self._learn_status(entry, checkpoint)
        self._show_blocks(rendered.blocks)
        self.query_one(JsonView).load(rendered.raw, f"checkpoint step {entry.step}")
        self.query_one("#cp-readable", VerticalScroll).scroll_home(animate=False)
        self._set_loading(False)
        self._update_title()
        if self.view == "diff":
            self._show_diff()

    def _learn_status(self, entry: CheckpointEntry, checkpoint: Checkpoint) -> None:
        """Note a read checkpoint's status and id on its entry (the list shows them)."""
        known = replace(entry, status=checkpoint.status, checkpoint_id=checkpoint.id)
        self.entries = [known if e == entry else e for e in self.entries]
        if self.current == entry:
            self.current = known

    def _index(self) -> int:
        return next((i for i, e in enumerate(self.entries) if e == self.current), -1)

    def _update_title(self) -> None:
        entry = self.current
        title = Text("Checkpoint ", "bold")
        if entry is not None:
            title.append(f"step {entry.step if entry.known_step else '?'}", "bold")
            checkpoint = self.checkpoint
            if isinstance(checkpoint, Checkpoint):
                title.append(f"  {checkpoint.status}", "cyan")
                if checkpoint.expert is not None:
                    title.append(f"  {checkpoint.expert.key}", "")
            title.append(f"  ({self._index() + 1} of {len(self.entries)}", "dim")
            title.append(", listing files…)" if self.scanning else ")", "dim")
            title.append(f"  {entry.source}  run {entry.run_id}", "dim")
        self.query_one("#cp-title", Static).update(title)

    def _switch(self, view: str) -> None:
        self.view = view
        self.query_one(ContentSwitcher).current = f"cp-{view}"
        target = self.query_one(JsonView).tree if view == "raw" else self.query_one(f"#cp-{view}")
        target.focus()

    # --- actions --------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.view in ("list", "diff"):
            self._switch("readable")
        else:
            self.dismiss(None)

    def _step_by(self, direction: int) -> None:
        index = self._index()
        if index < 0:
            return
        new = index + direction
        if 0 <= new < len(self.entries):
            self._go(self.entries[new])
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
        index = self._index()
        previous = await self._load(self.entries[index - 1]) if index > 0 else None
        text.update(Group(*await asyncio.to_thread(_render_diff, previous, current)))

    def action_list(self) -> None:
        if self.view == "list":
            self._switch("readable")
            return
        self._fill_list()
        self._switch("list")

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

    def action_more_messages(self) -> None:
        if self.current is not None and self.view == "readable":
            self.message_limit += MAX_MESSAGES
            self._go(self.current)
