"""The raw JSON of an event or checkpoint as a lazy, highlighted, searchable tree.

Nodes get their children only when expanded, a page at a time, so a 10 MB checkpoint
costs a handful of nodes until the user digs in. Base64 payloads show as
``<image/png, 1.2 MB>``; long strings are cut and open whole with ``o`` (pager) or
``O`` ($EDITOR). ``/`` searches keys and values (in a thread), ``n``/``N`` walk the matches.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode

from ..pager import open_in_editor, open_in_pager

#: strings longer than this are cut in the tree and the readable view
LONG_STRING = 500
#: children added per expansion of an object or array
PAGE = 200
#: fields holding base64 payloads (imageInlinePart.encodedData, *BinaryPart.data)
BLOB_FIELDS = frozenset({"encodedData", "data"})
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")
MAX_MATCHES = 5000

Path = tuple[str | int, ...]


# --- pure helpers (shared with the readable view) ---------------------------------------


def human_size(size: int) -> str:
    """``512 B``, ``1.2 KB``, ``3.4 MB``."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # unreachable


def blob_label(name: str | int | None, value: Any, mime_type: str | None = None) -> str | None:
    """``<image/png, 1.2 MB>`` when ``value`` is a base64 payload, else None.

    A payload is a string under ``encodedData``/``data``, or any string over 1 KB made
    only of the base64 alphabet (checked on a sample: a full scan of megabytes is wasted).
    """
    if not isinstance(value, str) or len(value) < 64:
        return None
    named = name in BLOB_FIELDS
    if not named:
        sample = value[:4096]
        if len(value) <= 1024 or " " in sample or not _BASE64.fullmatch(sample):
            return None
    return f"<{mime_type or 'base64 data'}, {human_size(len(value) * 3 // 4)}>"


def cut_text(text: str, limit: int = LONG_STRING) -> tuple[str, int]:
    """``text`` cut to ``limit`` characters, and how many were left out."""
    if len(text) <= limit:
        return text, 0
    return text[:limit], len(text) - limit


def more_chars_note(count: int) -> str:
    return f"… ({count:,} more chars, press o to open)"


def find_matches(value: Any, query: str, limit: int = MAX_MATCHES) -> list[Path]:
    """Paths (document order) whose key or scalar value contains ``query``, case-insensitive.

    Base64 payloads are not searched. Runs in a thread for big documents.
    """
    needle = query.lower()
    found: list[Path] = []
    for path, name, item in _walk(value):
        if len(found) >= limit:
            break
        if isinstance(name, str) and needle in name.lower():
            found.append(path)
        elif isinstance(item, dict | list) or blob_label(name, item) is not None:
            continue
        elif needle in _scalar_text(item).lower():
            found.append(path)
    return found


def _walk(value: Any) -> Iterator[tuple[Path, str | int | None, Any]]:
    stack: list[tuple[Path, str | int | None, Any]] = [((), None, value)]
    while stack:
        path, name, item = stack.pop()
        if path:
            yield path, name, item
        if isinstance(item, dict):
            children = [((*path, k), k, v) for k, v in item.items()]
        elif isinstance(item, list):
            children = [((*path, i), i, v) for i, v in enumerate(item)]
        else:
            continue
        stack.extend(reversed(children))


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def value_at(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


def json_label(name: str | int | None, value: Any, mime_type: str | None = None) -> Text:
    """A highlighted one-line label: ``name: value`` with containers summarised."""
    label = Text()
    if isinstance(name, int):
        label.append(f"[{name}]", "dim")
        label.append(" ")
    elif name is not None:
        label.append(name, "bold cyan")
        label.append(": ", "dim")
    if isinstance(value, dict):
        kind = value.get("type") if isinstance(value.get("type"), str) else None
        label.append("{…}", "magenta")
        label.append(f" {len(value)} keys" + (f"  {kind}" if kind else ""), "dim")
    elif isinstance(value, list):
        label.append("[…]", "magenta")
        label.append(f" {len(value)} items", "dim")
    elif isinstance(value, str):
        blob = blob_label(name, value, mime_type)
        if blob is not None:
            label.append(blob, "italic yellow")
        else:
            head, rest = cut_text(value)
            label.append(json.dumps(head, ensure_ascii=False), "green")
            if rest:
                label.append(" " + more_chars_note(rest), "italic dim")
    elif isinstance(value, bool) or value is None:
        label.append(json.dumps(value), "italic magenta")
    else:
        label.append(json.dumps(value), "cyan")
    return label


# --- the tree ---------------------------------------------------------------------------


@dataclass
class JsonNode:
    """What a tree node stands for: a value at a path (children added on demand)."""

    path: Path
    name: str | int | None
    value: Any
    loaded: int = 0  # how many children were added
    children: dict[str | int, TreeNode[Any]] = field(default_factory=dict)
    more: TreeNode[Any] | None = None  # the "… N more" node, while there are more


@dataclass
class MoreNode:
    """The "… N more" row at the end of a page of children."""

    parent: TreeNode[Any]


class JsonTree(Tree[Any]):
    """A Tree whose nodes are added lazily from a JSON value."""

    DEFAULT_CSS = """
    JsonTree { height: 1fr; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("JSON", **kwargs)
        self.document: Any = None
        self.auto_expand = False  # enter opens "more" rows and strings, space toggles

    def load(self, value: Any, title: str = "JSON") -> None:
        """Show ``value`` (already masked by the caller); only the first level is built."""
        self.document = value
        self.clear()
        self.root.set_label(Text(title, "bold"))
        self.root.data = JsonNode((), None, value)
        self.root.allow_expand = isinstance(value, dict | list)
        self._populate(self.root)
        self.root.expand()
        self.move_cursor(self.root)

    def _populate(self, node: TreeNode[Any], upto: int = 0) -> None:
        """Add the next page of ``node``'s children (or up to index ``upto``)."""
        data = node.data
        if not isinstance(data, JsonNode) or not isinstance(data.value, dict | list):
            return
        value = data.value
        total = len(value)
        if data.loaded >= total or (data.loaded and upto < data.loaded):
            return
        end = min(total, max(data.loaded + PAGE, upto + 1))
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        mime = value.get("mimeType") if isinstance(value, dict) else None
        if data.more is not None:
            data.more.remove()
            data.more = None
        for name, item in items[data.loaded : end]:
            child = node.add(
                json_label(name, item, mime if isinstance(mime, str) else None),
                JsonNode((*data.path, name), name, item),
                allow_expand=isinstance(item, dict | list) and len(item) > 0,
            )
            data.children[name] = child
        data.loaded = end
        if end < total:
            note = Text(f"… {total - end:,} more (enter to show)", "italic dim")
            data.more = node.add(note, MoreNode(node), allow_expand=False)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Any]) -> None:
        event.stop()
        self._populate(event.node)

    def on_tree_node_selected(self, event: Tree.NodeSelected[Any]) -> None:
        node = event.node
        if isinstance(node.data, MoreNode):
            event.stop()
            parent = node.data.parent
            index = parent.data.loaded
            self._populate(parent)
            target = parent.data.children.get(_nth_key(parent.data.value, index))
            if target is not None:
                self.reveal_node(target)
        elif node.allow_expand:
            node.toggle()

    def node_for_path(self, path: Path) -> TreeNode[Any] | None:
        """The node of ``path``, adding and expanding the nodes on the way."""
        node = self.root
        for step in path:
            data = node.data
            if not isinstance(data, JsonNode):
                return None
            index = step if isinstance(step, int) else _key_index(data.value, step)
            self._populate(node, upto=index)
            if not node.is_expanded:
                node.expand()
            child = data.children.get(step)
            if child is None:
                return None
            node = child
        return node

    def reveal_node(self, node: TreeNode[Any]) -> None:
        """Move the cursor to ``node`` (building the lines first so its line is known)."""
        _ = self._tree_lines  # rebuilds lines after expansions: node.line is then current
        self.move_cursor(node)
        self.scroll_to_node(node, animate=False)

    def cursor_value(self) -> tuple[Path, Any] | None:
        node = self.cursor_node
        if node is None or not isinstance(node.data, JsonNode):
            return None
        return node.data.path, node.data.value


def _key_index(value: Any, key: str | int) -> int:
    if isinstance(value, dict):
        for index, name in enumerate(value):
            if name == key:
                return index
    return 0


def _nth_key(value: Any, index: int) -> str | int | None:
    if isinstance(value, list):
        return index
    if isinstance(value, dict):
        for position, name in enumerate(value):
            if position == index:
                return name
    return None


def path_text(path: Path) -> str:
    """``.messages[2].contents[0].text`` (the --filter syntax of ``log``)."""
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path) or "."


class JsonView(Vertical):
    """A :class:`JsonTree` with a search box (``/``, ``n``, ``N``) and a status line."""

    DEFAULT_CSS = """
    JsonView { height: 1fr; }
    JsonView > Input { display: none; height: 3; }
    JsonView.-searching > Input { display: block; }
    JsonView > #json-status { height: 1; color: $text-muted; padding: 0 1; }
    """

    BINDINGS = [
        Binding("slash", "search", "search", tooltip="search keys and values"),
        Binding("n", "next_match", "next match", show=False),
        Binding("N", "previous_match", "previous match", show=False),
        Binding("o", "open", "open", tooltip="open the selected value in a pager"),
        Binding("O", "open_in_editor", "open in $EDITOR", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.matches: list[Path] = []
        self.match_index = -1
        self.query_text = ""

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search keys and values (enter; esc to close)", id="json-search")
        yield JsonTree(id="json-tree")
        yield Static("", id="json-status")

    @property
    def tree(self) -> JsonTree:
        return self.query_one(JsonTree)

    def load(self, value: Any, title: str = "JSON") -> None:
        """Show a JSON value (the caller masks secrets); resets the search."""
        self.matches, self.match_index = [], -1
        self.tree.load(value, title)
        self._status("/ search   n/N next/prev   o open   space expand")

    def focus_tree(self) -> None:
        self.tree.focus()

    def _status(self, text: str) -> None:
        self.query_one("#json-status", Static).update(Text(text))

    # --- search -------------------------------------------------------------------------

    def action_search(self) -> None:
        self.add_class("-searching")
        search = self.query_one(Input)
        search.value = self.query_text
        search.focus()

    @on(Input.Submitted, "#json-search")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.remove_class("-searching")
        self.tree.focus()
        self.search(event.value)

    def on_key(self, event: Any) -> None:
        if event.key == "escape" and self.has_class("-searching"):
            event.stop()
            self.remove_class("-searching")
            self.tree.focus()

    @work(exclusive=True, group="json-search")
    async def search(self, query: str) -> None:
        """Find ``query`` in keys and values (in a thread) and go to the first match."""
        self.query_text = query
        if not query:
            self.matches, self.match_index = [], -1
            self._status("")
            return
        self._status(f"searching for {query!r}…")
        document = self.tree.document
        self.matches = await asyncio.to_thread(find_matches, document, query)
        self.match_index = -1
        if not self.matches:
            self._status(f"no match for {query!r}")
            return
        self.action_next_match()

    def action_next_match(self) -> None:
        self._go_to_match(+1)

    def action_previous_match(self) -> None:
        self._go_to_match(-1)

    def _go_to_match(self, direction: int) -> None:
        if not self.matches:
            self._status("no search (press / to search)")
            return
        self.match_index = (self.match_index + direction) % len(self.matches)
        path = self.matches[self.match_index]
        node = self.tree.node_for_path(path)
        if node is not None:
            self.tree.reveal_node(node)
        more = "+" if len(self.matches) >= MAX_MATCHES else ""
        self._status(
            f"match {self.match_index + 1}/{len(self.matches)}{more} for {self.query_text!r}"
            f"  {path_text(path)}   n/N next/prev"
        )

    # --- open whole -----------------------------------------------------------------------

    async def _cursor_text(self) -> tuple[str, str] | None:
        found = self.tree.cursor_value()
        if found is None:
            return None
        path, value = found
        if isinstance(value, str):
            return path_text(path), value
        # the root of a 10 MB checkpoint takes a while to pretty-print: not on the UI loop
        return path_text(path), await asyncio.to_thread(pretty_json, value)

    async def action_open(self) -> None:
        found = await self._cursor_text()
        if found is not None:
            open_in_pager(self.app, *found)

    async def action_open_in_editor(self) -> None:
        found = await self._cursor_text()
        if found is not None:
            await open_in_editor(self.app, found[1], suffix=".json")


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
