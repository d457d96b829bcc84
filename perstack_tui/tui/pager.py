"""Open long text whole: in a read-only pager screen, or in ``$EDITOR`` (the app suspends).

Used wherever the UI cuts a string ("… N more chars, press o to open"). Nothing is
written to the storage: the editor gets a temporary copy that is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable

from rich.text import Text
from textual.app import App, ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static, TextArea

#: above this size the pager does not soft-wrap (wrapping megabytes costs seconds)
WRAP_LIMIT = 1_000_000


class PagerScreen(Screen[None]):
    """The whole of a text, read-only and scrollable; ``e`` opens it in ``$EDITOR``."""

    DEFAULT_CSS = """
    PagerScreen > #pager-title { height: 1; background: $panel; padding: 0 1; }
    PagerScreen > TextArea { height: 1fr; border: none; }
    PagerScreen > #pager-help { height: 1; color: $text-muted; padding: 0 1; }
    """

    BINDINGS = [
        Binding("escape", "close", "Back", tooltip="close"),
        Binding("q", "close", "Back", show=False, tooltip="close"),
        Binding("e", "editor", "Open in $EDITOR", tooltip="open in $EDITOR"),
    ]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        size = f"{len(self.text):,} chars, {self.text.count(chr(10)) + 1:,} lines"
        yield Static(
            Text.assemble((self.title_text, "bold"), "  ", (size, "dim")), id="pager-title"
        )
        yield TextArea(
            self.text,
            read_only=True,
            soft_wrap=len(self.text) < WRAP_LIMIT,
            show_line_numbers=True,
            id="pager-text",
        )
        yield Static("esc back   e open in $EDITOR", id="pager-help")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_close(self) -> None:
        self.dismiss(None)

    async def action_editor(self) -> None:
        await open_in_editor(self.app, self.text)


def open_in_pager(app: App, title: str, text: str) -> PagerScreen:
    """Push a :class:`PagerScreen` showing ``text`` whole."""
    screen = PagerScreen(title, text)
    app.push_screen(screen)
    return screen


def editor_command() -> list[str]:
    """``$VISUAL``, else ``$EDITOR``, else ``vi``, split like a shell would."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return shlex.split(editor)


async def open_in_editor(
    app: App,
    text: str,
    *,
    suffix: str = ".txt",
    run: Callable[[list[str]], object] = subprocess.call,
) -> bool:
    """Open ``text`` in ``$EDITOR`` with the app suspended; False (and a notice) if it can't.

    ``run`` starts the editor and waits for it (a test passes its own).
    """
    path = await asyncio.to_thread(_write_temp, text, suffix)
    try:
        with app.suspend():
            run([*editor_command(), path])
    except SuspendNotSupported:
        app.notify("This terminal cannot hand over to $EDITOR; use o (pager)", severity="warning")
        return False
    except OSError as error:
        app.notify(f"Could not start $EDITOR: {error}", severity="error")
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    app.refresh()
    return True


def _write_temp(text: str, suffix: str) -> str:
    handle, path = tempfile.mkstemp(prefix="perstack-tui-", suffix=suffix)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    return path
