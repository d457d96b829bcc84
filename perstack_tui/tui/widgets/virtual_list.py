"""A list that renders only the rows on screen (Textual's line API).

DataTable and Tree build every row up front and slow down past about 10,000 rows; this
list asks a callback for the rows it is about to paint, so 100,000 jobs cost the same as
twenty. It owns the cursor and the keys that move it; what a row says is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

#: ``render_row(index, width) -> Text``: the text of one row (cut or padded to ``width``)
RowRenderer = Callable[[int, int], Text]


class VirtualList(ScrollView, can_focus=True):
    """A focusable list of ``row_count`` rows supplied by ``render_row``, with a cursor."""

    BINDINGS = [
        Binding("up,k", "cursor_up", "up", show=False),
        Binding("down,j", "cursor_down", "down", show=False),
        Binding("pageup,ctrl+b", "page_up", "page up", show=False),
        Binding("pagedown,ctrl+f", "page_down", "page down", show=False),
        Binding("home,g", "first", "top", show=False),
        Binding("end,G", "last", "bottom", show=False),
        Binding("enter", "select", "open", show=False),
    ]

    COMPONENT_CLASSES = {"virtual-list--cursor", "virtual-list--empty"}

    DEFAULT_CSS = """
    VirtualList {
        background: $surface;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    VirtualList > .virtual-list--cursor {
        background: $panel-lighten-2;
    }
    VirtualList:focus > .virtual-list--cursor {
        background: $accent 60%;
        text-style: bold;
    }
    VirtualList > .virtual-list--empty {
        color: $text-muted;
        text-style: italic;
    }
    """

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class _RowMessage(Message):
        """Something happened at row ``index`` of ``virtual_list``."""

        def __init__(self, virtual_list: VirtualList, index: int) -> None:
            super().__init__()
            self.virtual_list = virtual_list
            self.index = index

        @property
        def control(self) -> VirtualList:
            return self.virtual_list

    class Highlighted(_RowMessage):
        """The cursor moved to ``index``."""

        def can_replace(self, message: Message) -> bool:
            # Holding a key down must not queue one message per row passed.
            return isinstance(message, VirtualList.Highlighted) and (
                message.virtual_list is self.virtual_list
            )

    class Selected(_RowMessage):
        """Enter (or a click on the cursor row) chose ``index``."""

    class Scrolled(Message):
        """The visible rows changed: a chance to load details for ``first``..``last``."""

        def __init__(self, virtual_list: VirtualList, first: int, last: int) -> None:
            super().__init__()
            self.virtual_list = virtual_list
            self.first = first
            self.last = last

        @property
        def control(self) -> VirtualList:
            return self.virtual_list

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, VirtualList.Scrolled) and (
                message.virtual_list is self.virtual_list
            )

    def __init__(
        self,
        render_row: RowRenderer,
        *,
        row_count: int = 0,
        empty_text: str = "nothing here",
        before_last: Callable[[], None] | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._render_row = render_row
        self.row_count = row_count
        self.empty_text = empty_text
        #: called before the cursor goes to the last row: a list still making its rows
        #: makes the rest then
        self._before_last = before_last
        self._last_visible: tuple[int, int] = (-1, -1)

    # --- the rows -----------------------------------------------------------------------

    def set_row_count(self, count: int, *, cursor: int | None = None) -> None:
        """Change how many rows there are (and optionally where the cursor goes); repaint."""
        self.row_count = count
        self.virtual_size = Size(self.size.width, count)
        target = self.cursor if cursor is None else cursor
        self.set_cursor(max(0, min(target, count - 1)), scroll=cursor is not None)
        self.refresh()
        self._announce_visible()

    def set_empty_text(self, text: str) -> None:
        self.empty_text = text
        self.refresh()

    @property
    def visible_range(self) -> tuple[int, int]:
        """The first and last index on screen (last is exclusive)."""
        first = int(self.scroll_offset.y)
        return first, min(self.row_count, first + max(1, self.size.height))

    def refresh_rows(self, first: int = 0, last: int | None = None) -> None:
        """Repaint rows ``first``..``last`` if they are on screen."""
        top = int(self.scroll_offset.y)
        last = self.row_count if last is None else last
        start, end = max(first, top), min(last, top + self.size.height)
        if start < end:
            self.refresh(Region(0, start - top, self.size.width, end - start))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        index = int(self.scroll_offset.y) + y
        base = self.rich_style
        if self.row_count == 0:
            if y == 0:
                return self._strip(Text(self.empty_text), width, base).apply_style(
                    self.get_component_rich_style("virtual-list--empty")
                )
            return Strip.blank(width, base)
        if index >= self.row_count:
            return Strip.blank(width, base)
        try:
            text = self._render_row(index, width)
        except Exception as error:  # a bad row must not take the whole list down
            text = Text(f"<row {index}: {error}>", style="red")
        strip = self._strip(text, width, base)
        if index == self.cursor:
            strip = strip.apply_style(self.get_component_rich_style("virtual-list--cursor"))
        return strip

    def _strip(self, text: Text, width: int, base: Style) -> Strip:
        text = text.copy()
        text.no_wrap = True
        text.truncate(width, overflow="ellipsis", pad=True)
        text.stylize_before(base)
        return Strip(text.render(self.app.console, end=""), width).crop_extend(0, width, base)

    # --- the cursor ---------------------------------------------------------------------

    def set_cursor(self, index: int, *, scroll: bool = True) -> None:
        """Move the cursor to ``index`` (clamped); scroll it into view."""
        index = max(0, min(index, self.row_count - 1)) if self.row_count else 0
        old = self.cursor
        self.cursor = index
        self.refresh_rows(old, old + 1)
        self.refresh_rows(index, index + 1)
        if scroll:
            self.scroll_to_row(index)

    def scroll_to_row(self, index: int) -> None:
        top = int(self.scroll_offset.y)
        height = max(1, self.size.height)
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + height:
            self.scroll_to(y=index - height + 1, animate=False, immediate=True)

    def watch_cursor(self, index: int) -> None:
        if self.row_count:
            self.post_message(self.Highlighted(self, index))

    @property
    def at_end(self) -> bool:
        return self.row_count == 0 or self.cursor >= self.row_count - 1

    def action_cursor_up(self) -> None:
        self.set_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.set_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.set_cursor(self.cursor - max(1, self.size.height - 1))

    def action_page_down(self) -> None:
        self.set_cursor(self.cursor + max(1, self.size.height - 1))

    def action_first(self) -> None:
        self.set_cursor(0)

    def action_last(self) -> None:
        if self._before_last is not None:
            self._before_last()
        self.set_cursor(self.row_count - 1)

    def action_select(self) -> None:
        if self.row_count:
            self.post_message(self.Selected(self, self.cursor))

    # --- events -------------------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        index = int(self.scroll_offset.y) + event.y
        if 0 <= index < self.row_count:
            again = index == self.cursor
            self.set_cursor(index)
            if again or event.chain > 1:
                self.post_message(self.Selected(self, index))

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, self.row_count)
        self._announce_visible()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._announce_visible()

    def _announce_visible(self) -> None:
        visible = self.visible_range
        if visible != self._last_visible:
            self._last_visible = visible
            self.post_message(self.Scrolled(self, *visible))
