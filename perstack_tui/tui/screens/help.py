"""``?``: every key of every screen, read from the bindings themselves (so it cannot drift).

A binding's ``tooltip`` is the longer wording the help shows; its ``description`` is the
short footer label, used when there is no tooltip.
"""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

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


def key_label(keys: str) -> str:
    return " ".join(_KEY_NAMES.get(k.strip(), k.strip()) for k in keys.split(","))


def help_rows(bindings: list[Binding]) -> list[tuple[str, str]]:
    """(keys, what they do) per binding; bindings doing the same thing share a row."""
    rows: dict[tuple[str, str], list[str]] = {}
    for binding in bindings:
        does = binding.tooltip or binding.description or binding.action.replace("_", " ")
        rows.setdefault((binding.action, does), []).append(key_label(binding.key))
    return [(" ".join(labels), does) for (_action, does), labels in rows.items()]


def bindings_table(title: str, bindings: list[Binding]) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold underline",
        box=None,
        expand=True,
        show_header=False,
    )
    # a fixed key column, so the descriptions line up from one section to the next
    table.add_column("key", style="bold cyan", width=16, no_wrap=True)
    table.add_column("does", ratio=1)
    for keys, does in help_rows(bindings):
        table.add_row(keys, does)
    return table


def help_sections(app_bindings: list[Binding]) -> list[tuple[str, list[Binding]]]:
    """The sections of the help: each screen's and widget's own BINDINGS."""
    from ..pager import PagerScreen
    from ..widgets.event_view import EventDetail
    from ..widgets.json_view import JsonView
    from ..widgets.virtual_list import VirtualList
    from .checkpoint import CheckpointScreen
    from .job import JobScreen
    from .jobs import JobsScreen

    palette = Binding(
        "ctrl+p", "command_palette", "palette", tooltip="command palette (commands and jumps)"
    )
    return [
        ("Everywhere", [*app_bindings, palette]),
        ("Lists (jobs, runs, events)", VirtualList.BINDINGS),
        ("Jobs list", JobsScreen.BINDINGS),
        ("Job: runs, events, detail", JobScreen.BINDINGS),
        ("Event detail (focused)", EventDetail.BINDINGS),
        ("JSON tree (raw views)", JsonView.BINDINGS),
        ("Checkpoint", CheckpointScreen.BINDINGS),
        ("Pager", PagerScreen.BINDINGS),
    ]


class HelpScreen(ModalScreen[None]):
    """Every key, by screen; any of esc, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    HelpScreen .help-section { margin-bottom: 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "keys  (esc closes)"
            for title, bindings in help_sections(list(self.app.BINDINGS)):
                yield Static(bindings_table(title, bindings), classes="help-section")
