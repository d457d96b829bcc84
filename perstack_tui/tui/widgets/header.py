"""The top line of every screen: which storage, its state, and where the user is."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

_STATE_STYLE = {"ok": "green", "loading": "yellow", "error": "bold red"}
_STATE_MARK = {"ok": "●", "loading": "◌", "error": "✖"}


class StorageHeader(Static):
    """``perstack-tui │ filesystem:/data/perstack │ ● ok │ job abc…`` (follows the app)."""

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

    def on_mount(self) -> None:
        self.watch(self.app, "storage_state", self._update, init=False)
        self.watch(self.app, "storage_problem", self._update, init=False)
        self._update()

    def set_where(self, where: str) -> None:
        self.where = where
        self._update()

    def _update(self, _value: object = None) -> None:
        app = self.app
        state = getattr(app, "storage_state", "ok")
        text = Text.assemble(
            ("perstack-tui", "bold"),
            "  ",
            (str(getattr(app, "storage_location", "")), "cyan"),
            "  ",
            (f"{_STATE_MARK.get(state, '?')} {state}", _STATE_STYLE.get(state, "")),
        )
        problem = getattr(app, "storage_problem", "")
        if state == "error" and problem:
            text.append(f": {problem}  (R retry)", "red")
        if self.where:
            text.append(f"  │ {self.where}", "bold")
        self.update(text)
