"""``?``: every key of every screen, read from the bindings themselves (so it cannot drift)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..widgets.virtual_list import VirtualList

#: keys as users type them
_KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "colon": ":",
    "number_sign": "#",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "escape": "esc",
    "pageup": "pgup",
    "pagedown": "pgdn",
}

_EXTRA = {
    "Checkpoint view": [
        ("[ ]", "previous / next checkpoint"),
        ("d", "diff against the previous checkpoint"),
        ("l", "checkpoints of the job by step"),
        ("esc", "back to the events of its step"),
    ],
    "Detail": [("r", "readable / raw JSON"), ("/", "search in the raw JSON")],
}


def key_label(keys: str) -> str:
    return " ".join(_KEY_NAMES.get(k, k) for k in keys.split(","))


def bindings_table(title: str, bindings: list[Binding | tuple[str, str, str]]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=None, expand=True)
    table.add_column("key", style="bold cyan", width=16)
    table.add_column("does")
    for binding in bindings:
        if isinstance(binding, tuple):
            binding = Binding(*binding)
        description = binding.description or binding.action.replace("_", " ")
        table.add_row(key_label(binding.key), description)
    return table


class HelpScreen(ModalScreen[None]):
    """Every key, by screen; any of esc, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        from .job import JobScreen
        from .jobs import JobsScreen

        app = self.app
        sections: list[tuple[str, list]] = [
            ("Everywhere", [*app.BINDINGS, ("ctrl+p", "command_palette", "command palette")]),
            ("Lists", VirtualList.BINDINGS),
            ("Jobs", JobsScreen.BINDINGS),
            ("Job: runs, events, detail", JobScreen.BINDINGS),
        ]
        with VerticalScroll():
            yield Static(Text("Keys", style="bold underline"))
            for title, bindings in sections:
                yield Static(bindings_table(title, bindings))
            for title, rows in _EXTRA.items():
                yield Static(bindings_table(title, [(k, "", d) for k, d in rows]))
