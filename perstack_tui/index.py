"""The persistent job index: what the last look at a storage learnt of each job, kept on
the local disk so a reopen does not pay for it again.

Without it, opening 10,000 jobs on S3 costs a listing of every key (over 100 pages) before
the rows can be newest first, and two reads per job for its expert and usage. With it, the
rows are newest first right after the one-page-per-1,000-jobs id listing, and a job whose
files did not change is never read again.

A stale index never shows wrong data:

- A job's **start** never moves (events are only ever added after it): the index orders
  the rows before any job is checked, and the rest of such a row stays blank ("…").
- Everything else (status, times, steps, expert, usage) is taken from the index only when
  a fresh listing of the job has the **fingerprint** stored with it
  (:mod:`perstack_tui.storage.tree`): the same files in the same versions.
- A running job's summary is kept too: the same files give the same summary, and a job
  that moves on adds files (so a job left "running" by a crash is not read again at each
  visit). Jobs gone from the storage are dropped when a full scan no longer lists them.

The index is a cache: it lives under ``$PERSTACK_TUI_CACHE_DIR`` (default
``$XDG_CACHE_HOME/perstack-tui``, else ``~/.cache/perstack-tui``), one file per storage
location, written atomically. ``PERSTACK_TUI_CACHE_DIR=off`` turns it off. A file that
cannot be read is set aside and rebuilt (:attr:`JobIndex.problem` says why); browsing never
writes to the storage itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: bump when the entry layout, the fingerprint rules or the way a summary is derived from
#: a job's files change: files of another format are set aside and rebuilt
FORMAT = 1
CACHE_ENV = "PERSTACK_TUI_CACHE_DIR"


def cache_dir() -> Path | None:
    """Where perstack-tui keeps its caches; ``None`` when turned off."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "0", "false") else Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "perstack-tui"


class JobIndex:
    """Job id -> (start, fingerprint, complete summary), for one storage location.

    Summaries are plain dicts here (the catalog turns them into its own type); this module
    knows nothing of storages or screens.
    """

    def __init__(self, path: Path | None, location: str = "") -> None:
        self.path = path
        self.location = location
        #: why the file on disk was not used or not written (``info``, the TUI and
        #: ``jobs`` say it)
        self.problem: str | None = None
        self._entries: dict[str, list[Any]] = {}  # id -> [start, fingerprint, summary]
        #: changes made, and how many of them are on disk
        self._changes = 0
        self._saved = 0

    @classmethod
    def for_location(cls, location: str) -> JobIndex:
        """The index of a storage location, loaded from the cache directory (if any)."""
        folder = cache_dir()
        if folder is None:
            return cls(None, location)
        digest = hashlib.sha256(location.encode()).hexdigest()[:24]
        index = cls(folder / "index" / f"{digest}.json", location)
        index.load()
        return index

    def __len__(self) -> int:
        return len(self._entries)

    def load(self) -> None:
        """Read the file; a missing one is an empty index, a broken one is set aside."""
        if self.path is None:
            return
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as error:
            self.problem = f"cannot read the job index {self.path}: {error.strerror or error}"
            self.path = None  # do not overwrite what we cannot read
            return
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, not {FORMAT}")
            if data.get("location") != self.location:
                raise ValueError(f"written for {data.get('location')!r}")
            entries = data["jobs"]
            if not isinstance(entries, dict) or not all(
                isinstance(e, list) and len(e) == 3 for e in entries.values()
            ):
                raise ValueError("entries are not [start, fingerprint, summary]")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            self.problem = f"job index {self.path} not used ({error}): rebuilt"
            self._changes += 1  # replaced by the next save
            return
        self._entries = entries

    def knows(self, job_id: str) -> bool:
        return job_id in self._entries

    def start(self, job_id: str) -> int | None:
        entry = self._entries.get(job_id)
        start = entry[0] if entry else None
        return start if isinstance(start, int) else None

    def summary(self, job_id: str, fingerprint: str) -> dict[str, Any] | None:
        """The stored summary of a job, if a listing with ``fingerprint`` saw the same files
        as the one it was derived from."""
        entry = self._entries.get(job_id)
        if entry is None or entry[1] != fingerprint or not isinstance(entry[2], dict):
            return None
        return entry[2]

    def record(
        self,
        job_id: str,
        start: int | None,
        fingerprint: str | None,
        summary: dict[str, Any] | None,
    ) -> None:
        """What a listing (and the reads after it) said of a job; ``summary`` only where
        it is complete (expert and usage read)."""
        entry = [start, fingerprint, summary]
        if self._entries.get(job_id) != entry:
            self._entries[job_id] = entry
            self._changes += 1

    def keep_only(self, job_ids: set[str]) -> None:
        """Drop the jobs a full listing no longer shows."""
        gone = [j for j in self._entries if j not in job_ids]
        for job_id in gone:
            del self._entries[job_id]
        self._changes += bool(gone)

    def snapshot(self) -> dict[str, Any] | None:
        """What :meth:`write` would write, or ``None`` when nothing changed since the last
        write. Cheap (entries are replaced, never mutated), so it can be taken on the event
        loop and written in a thread while the catalog goes on recording."""
        if self.path is None or self._saved == self._changes:
            return None
        return {
            "format": FORMAT,
            "location": self.location,
            "jobs": dict(self._entries),
            "changes": self._changes,
        }

    def write(self, snapshot: dict[str, Any] | None) -> None:
        """Write a :meth:`snapshot` atomically (a crash leaves the old file)."""
        if snapshot is None or self.path is None:
            return
        changes = snapshot.pop("changes")
        blob = json.dumps(snapshot, separators=(",", ":")).encode()
        temporary = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".index-")
            with os.fdopen(handle, "wb") as file:
                file.write(blob)
            os.replace(temporary, self.path)
        except OSError as error:
            self.problem = f"cannot write the job index {self.path}: {error.strerror or error}"
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
            return
        self._saved = max(self._saved, changes)
        self.problem = None  # what was wrong (a broken file, a failed write) is mended

    def save(self) -> None:
        """Write the index now, if it changed."""
        self.write(self.snapshot())
