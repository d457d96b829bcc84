"""Textual's footer, rebuilt only when the keys it shows change.

Textual's ``Footer`` rebuilds all its keys (a widget each, with their styles) after every
``bindings_updated`` signal, and opening a screen sends several (the screen resumes, the
focus moves to a list, the detail shows), most of which change nothing it shows: ~10-15 ms
each, on the way to the first view of every screen.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    _rebuild_pending = False
    _built: tuple[Any, ...] | None = None  # what the keys shown were built from

    def bindings_changed(self, screen: Screen) -> None:
        # Textual's, but with at most one rebuild waiting, and none for the same keys
        self._bindings_ready = True
        if not screen.app.app_focus or self._rebuild_pending:
            return
        if self.is_attached and screen is self.screen:
            self._rebuild_pending = True
            self.call_after_refresh(self._rebuild)

    async def _rebuild(self) -> None:
        self._rebuild_pending = False
        if not self.is_attached:
            return
        shown = self._shown()
        if shown != self._built:
            self._built = shown
            await self.recompose()

    def _shown(self) -> tuple[Any, ...]:
        """What :meth:`compose` builds the keys from."""
        keys = tuple(
            (binding.key, binding.action, binding.description, binding.group, enabled, tooltip)
            for _node, binding, enabled, tooltip in self.screen.active_bindings.values()
            if binding.show
        )
        return (*keys, self.show_command_palette)
