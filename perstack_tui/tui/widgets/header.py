"""The top line of every screen: which storage, its state, and where the user is."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

_STATE_STYLE = {"ok": "green", "loading": "yellow", "error": "bold red"}
_STATE_MARK = {"ok": "●", "loading": "◌", "error": "✖"}
#: a storage location is never cut shorter than this (its start and end stay)
_MIN_LOCATION = 24


def middle_cut(text: str, width: int) -> str:
    """``text`` in ``width`` cells, cut in the middle (both ends of a path say the most)."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


class StorageHeader(Static):
    """``perstack-tui  filesystem:/data/perstack  ● ok  │ job abc…`` (follows the app).

    On a narrow terminal the brand goes first, then the middle of the storage location,
    so the state and where the user is stay readable.
    """

    DEFAULT_CSS = """
    StorageHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def __init__(self, where: str = "") -> None:
        super().__init__()
        self.where = where
        #: a shorter ``where`` for a narrow terminal (e.g. with the job id cut)
        self.short_where = ""

    def on_mount(self) -> None:
        self.watch(self.app, "storage_state", self._update, init=False)
        self.watch(self.app, "storage_problem", self._update, init=False)
        self._update()

    def on_resize(self) -> None:
        self._update()

    def set_where(self, where: str, short: str = "") -> None:
        self.where, self.short_where = where, short
        self._update()

    def _update(self, _value: object = None) -> None:
        # one line, docked, as wide as the screen: its size never changes, so no layout of
        # the screen (every storage call flips the state twice)
        self.update(self.line(self.content_size.width or 200), layout=False)

    def line(self, width: int) -> Text:
        """The header as it fits in ``width`` cells."""
        app = self.app
        state = getattr(app, "storage_state", "ok")
        location = str(getattr(app, "storage_location", ""))
        status = Text(f"{_STATE_MARK.get(state, '?')} {state}", _STATE_STYLE.get(state, ""))
        problem = getattr(app, "storage_problem", "")
        if state == "error" and problem:
            status.append(f": {problem}  (R retry)", "red")

        def assemble(brand: bool, location: str, where: str) -> Text:
            parts = [("perstack-tui", "bold"), "  "] if brand else []
            tail = Text(f"  │ {where}", "bold") if where else Text()
            return Text.assemble(*parts, (location, "cyan"), "  ", status, tail)

        where = self.where
        text = assemble(True, location, where)
        if text.cell_len > width:
            text = assemble(False, location, where)
        if text.cell_len > width and self.short_where:
            where = self.short_where
            text = assemble(False, location, where)
        if text.cell_len > width:
            room = len(location) - (text.cell_len - width)
            text = assemble(False, middle_cut(location, max(room, _MIN_LOCATION)), where)
        return text
