"""Perstack's filesystem storage: ``{base}/jobs/...`` on a local disk."""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from operator import attrgetter
from pathlib import Path
from stat import S_ISREG
from typing import TypeVar

import aiofiles
import aiofiles.os

from .. import keys
from .base import (
    EventList,
    KeyValueStorage,
    NotFoundError,
    ObjectInfo,
    StorageError,
    StorageInfo,
    folder_event_metas,
)
from .tree import JobTree, version_of

T = TypeVar("T")

#: read_many: at most this many threads, each reading at least this many files in turn
_READ_THREADS = 4
_FILES_PER_THREAD = 1024
#: how a file is opened to be read (not blocking: see FileSystemStorage._read)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class FileSystemStorage(KeyValueStorage):
    """A local directory laid out as Perstack's FileSystemStorage writes it."""

    def __init__(self, base: str | os.PathLike[str]) -> None:
        super().__init__()
        self.base = Path(base).expanduser().resolve()

    def path_of(self, key: str) -> Path:
        """The file that holds ``key``; refuses keys that would leave the base directory."""
        return Path(self._file(key))

    def storage_info(self) -> StorageInfo:
        return StorageInfo("filesystem", f"filesystem:{self.base}")

    def no_jobs_message(self) -> str:
        if not self.base.is_dir():
            return (
                f"no jobs in {self.storage_info().location}: the directory does not exist "
                "(Perstack creates it on its first run; --storage or perstack.toml picks another)"
            )
        return super().no_jobs_message()

    async def list_prefixes(self, prefix: str) -> list[str]:
        return sorted(
            entry.name
            for entry in await self._scandir(prefix)
            if entry.is_dir(follow_symlinks=False)
        )

    async def list_objects(self, prefix: str, start_after: str | None = None) -> list[ObjectInfo]:
        """:meth:`list_keys`, with a ``stat()`` of only the files it returns: a live tail
        lists a folder of 10,000 events each poll for the few after ``start_after``."""

        def objects(path: str) -> list[ObjectInfo]:
            return _stat_files(path, _keys_after(prefix, _file_names(path), start_after))

        return await self._list_folder(prefix, objects)

    async def list_keys(self, prefix: str, start_after: str | None = None) -> list[str]:
        """Names from ``readdir`` alone: no ``stat()`` per file (most of a listing's cost).

        Names are sorted before the prefix is added (same order, shorter strings to compare),
        all in the listing's thread and without a Python frame per name.
        """
        return await self._list_folder(
            prefix, lambda path: _keys_after(prefix, _file_names(path), start_after)
        )

    async def list_event_metas(
        self, job_id: str, run_id: str, start_after: str | None = None
    ) -> EventList:
        """The run folder's files as :meth:`list_keys` lists them, checked in the listing's
        thread (:func:`~.base.folder_event_metas`): one thread hop, and the names of events
        left as the folder has them, to be sorted and parsed when they are needed (a first
        page and the ends need no sort of them all)."""
        if start_after is not None:
            return await super().list_event_metas(job_id, run_id, start_after)
        prefix = keys.run_prefix(job_id, run_id)

        def listed(path: str) -> EventList:
            return folder_event_metas(prefix, _file_names(path, sort=False), ordered=False)

        return await self._list_folder(prefix, listed)

    async def list_tree(self, prefix: str, *, stat: bool = False) -> list[ObjectInfo]:
        """Every file under ``prefix`` from one ``os.scandir`` walk in one thread.

        Names and types come from ``readdir`` alone; ``size``/``modified`` are 0 unless
        ``stat``. Symlinked folders are not followed (as :meth:`list_prefixes`).
        """
        return await asyncio.to_thread(self._walk, prefix, stat)

    def _walk(self, prefix: str, stat: bool) -> list[ObjectInfo]:
        names: list[str] = []
        stats: dict[str, tuple[int, float]] = {}
        folders = [(self.path_of(prefix), prefix)]
        while folders:
            path, key_prefix = folders.pop()
            try:
                with os.scandir(path) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            folders.append((entry.path, f"{key_prefix}{entry.name}/"))
                        elif entry.is_file():
                            key = key_prefix + entry.name
                            if stat:
                                try:
                                    info = entry.stat()
                                except FileNotFoundError:  # removed between listing and stat
                                    continue
                                stats[key] = (info.st_size, info.st_mtime)
                            names.append(key)
            except (FileNotFoundError, NotADirectoryError):  # removed meanwhile, or a file
                continue
            except PermissionError as error:
                raise StorageError(f"cannot list {path}: permission denied", key=prefix) from error
        names.sort()
        if stat:
            return [ObjectInfo(key, *stats[key]) for key in names]
        new = tuple.__new__  # skips NamedTuple's argument handling: ~2x faster per object
        return [new(ObjectInfo, (key, 0, 0.0, "")) for key in names]

    async def list_job_trees(self, job_ids: Sequence[str] | None = None) -> dict[str, JobTree]:
        """Every job's files, grouped as :func:`~.tree.group_job_trees` groups a listing, from
        a walk that knows the layout, in worker threads (the event loop never waits on it).

        Only what a summary is derived from is walked: job.json and the run folders, not
        checkpoints/ (a quarter of the folders; no summary reads a checkpoint file). An
        event (a file directly in a run folder named ``event-*``) has version ``""``: it is
        written once under a unique name, so its name is enough and costs no ``stat()``;
        job.json and every other file in a run folder are ``stat()``-ed once for size and
        mtime. A run folder holding only Perstack's own event names is taken from its names
        (each such name taken to be a file) and the facts of its names kept
        (:attr:`~.tree.JobTree.run_facts`). Unlike a recursive listing, a job folder that
        holds no file is included (a filesystem sees it), with no runs and
        :data:`~.tree.EMPTY_FINGERPRINT`; a run folder that holds no file is left out, as in
        the listing. Symlinked job and run folders are not followed; a symlinked runs/
        folder and run folders are, as a symlinked job.json is.
        """
        jobs_path = str(self.path_of(keys.JOBS))
        if job_ids is None:
            job_ids = await asyncio.to_thread(_job_ids, jobs_path)
        else:
            job_ids = [keys.check_id(job_id, "job id") for job_id in job_ids]
        trees = await asyncio.to_thread(_job_trees, jobs_path, job_ids)
        return {tree.job_id: tree for tree in trees}

    async def list_job_tree(self, job_id: str) -> JobTree:
        """One job's files, grouped and versioned as :meth:`list_job_trees` does (the same
        fingerprint for the same files); an empty tree if the job's folder is missing."""
        keys.check_id(job_id, "job id")
        jobs_path = str(self.path_of(keys.JOBS))
        trees = await asyncio.to_thread(_job_trees, jobs_path, [job_id])
        return trees[0] if trees else JobTree(job_id)

    async def _scandir(self, prefix: str) -> list[os.DirEntry[str]]:
        return await self._list_folder(prefix, _entries_of)

    async def _list_folder(self, prefix: str, read: Callable[[str], list[T]]) -> list[T]:
        """``read(folder)`` in a thread: ``[]`` if the folder is gone (or is a file), a
        :class:`StorageError` naming it if it may not be listed."""
        found = await asyncio.to_thread(_listed, read, str(self.path_of(prefix)), prefix)
        return found or []

    async def read_bytes(self, key: str) -> bytes:
        return await asyncio.to_thread(self._read, key)

    async def read_many(self, keys_: Sequence[str]) -> list[bytes | StorageError]:
        """Several files, read in a few threads that each read a run of them: one thread
        hop per run instead of one per file (1,000 small files: ~15 ms, not ~300 ms). A
        thread per 1,024 files: from a warm page cache, threads that share the GIL read
        small files 2-3x slower than one."""
        if not keys_:
            return []
        threads = min(_READ_THREADS, -(-len(keys_) // _FILES_PER_THREAD))
        size = -(-len(keys_) // threads)
        runs = await asyncio.gather(
            *(
                asyncio.to_thread(self._read_run, keys_[start : start + size])
                for start in range(0, len(keys_), size)
            )
        )
        return [result for run in runs for result in run]

    def _read_run(self, keys_: Sequence[str]) -> list[bytes | StorageError]:
        results: list[bytes | StorageError] = []
        for key in keys_:
            try:
                results.append(self._read(key))
            except StorageError as error:
                results.append(error)
        return results

    def _file(self, key: str) -> str:
        """:meth:`path_of` as a string, joined without pathlib (half the cost of reading a
        screen of small events is pathlib's)."""
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"unsafe key {key!r}", key=key)
        return f"{self.base}/{key}"

    def _read(self, key: str) -> bytes:
        """The file's bytes, read with the bare calls (a file object is ~40% of the cost
        of reading a small file), opened without waiting and read only if it is a regular
        file: a FIFO where a file was expected would otherwise hold its reader for good."""
        path = self._file(key)
        try:
            fd = os.open(path, _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError) as error:
            raise NotFoundError(f"{path}: no such file", key=key) from error
        except PermissionError as error:
            raise StorageError(f"{path}: permission denied", key=key) from error
        except OSError as error:
            raise StorageError(f"{path}: {error.strerror}", key=key) from error
        try:
            info = os.fstat(fd)
            if not S_ISREG(info.st_mode):
                raise NotFoundError(f"{path}: not a file", key=key)
            size = info.st_size + 1  # a short read is the end of a regular file
            parts = [os.read(fd, size)]
            while len(parts[-1]) == size:  # it grew since: read on to its end
                parts.append(os.read(fd, size := 1 << 20))
            return b"".join(parts)
        except OSError as error:
            raise StorageError(f"{path}: {error.strerror}", key=key) from error
        finally:
            os.close(fd)

    async def write_bytes(self, key: str, data: bytes) -> None:
        path = self.path_of(key)
        try:
            await aiofiles.os.makedirs(path.parent, exist_ok=True)
            async with aiofiles.open(path, "wb") as file:
                await file.write(data)
        except OSError as error:
            raise StorageError(f"cannot write {path}: {error.strerror}", key=key) from error


def _entries_of(path: str) -> list[os.DirEntry[str]]:
    with os.scandir(path) as entries:
        return list(entries)


def _file_names(path: str, *, sort: bool = True) -> list[str]:
    """Names of the files in ``path`` (symlinks to files count; folders do not), sorted
    unless not ``sort`` (then as the folder has them).

    Listed through a descriptor of the folder where the platform can: its entries then
    carry no path of their own (one string less an entry: ~10% of a 10,000-file listing).
    """
    if not _SCANDIR_FD:
        return _names_of_files(path, sort)
    folder = os.open(path, os.O_RDONLY | os.O_DIRECTORY)  # the errors scandir(path) raises
    try:
        return _names_of_files(folder, sort)
    finally:
        os.close(folder)


def _names_of_files(folder: str | int, sort: bool) -> list[str]:
    with os.scandir(folder) as entries:
        names = list(map(attrgetter("name"), filter(os.DirEntry.is_file, entries)))
    if sort:
        names.sort()
    return names


_SCANDIR_FD = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")


def _keys_after(prefix: str, names: list[str], start_after: str | None) -> list[str]:
    """``prefix + name`` of the sorted ``names``, only those after ``start_after``."""
    found = list(map(prefix.__add__, names))
    if start_after is not None:
        del found[: bisect_right(found, start_after)]
    return found


def _stat_files(path: str, object_keys: list[str]) -> list[ObjectInfo]:
    """An :class:`ObjectInfo` of each key, a file of the folder ``path`` (skipped if it
    went away since it was listed)."""
    objects = []
    for key in object_keys:
        try:
            stat = os.stat(os.path.join(path, key.rpartition("/")[2]))
        except FileNotFoundError:  # removed between listing and stat
            continue
        objects.append(ObjectInfo(key, stat.st_size, stat.st_mtime))
    return objects


# --- the job-tree walk (in a worker thread) ---------------------------------------------------
# The layout is known: jobs/{id}/{job.json, checkpoints/, runs/{run}/files}. A job folder is
# not listed: job.json is stat()-ed and runs/ listed (what else a job folder holds,
# checkpoints/ above all, no summary reads). A run folder of Perstack's own event names is
# taken from its names alone (os.listdir); any other run folder, and any folder below, is
# listed with os.scandir (names and types from readdir). Only files that are not events are
# stat()-ed. Lines are appended in key order (a folder's entries sorted as their keys sort),
# so a job's fingerprint equals group_job_trees' over a sorted listing.

_RUN, _OTHER = range(2)  # what a folder is, for _walk_folder
_EVENT_PREFIX = "event-"
_AFTER_EVENTS = "event."  # the first name after every "event-..." ("." follows "-")


def _job_ids(jobs_path: str) -> list[str]:
    entries = _entries(jobs_path, keys.JOBS) or []
    return sorted(entry.name for entry in entries if entry.is_dir(follow_symlinks=False))


def _job_trees(jobs_path: str, job_ids: Sequence[str]) -> list[JobTree]:
    """The trees of ``job_ids`` (a job whose folder is gone is left out).

    One loop with what it calls bound locally: 10,000 jobs take ~10 µs of Python each.
    A run folder the Perstack CLI wrote holds only events under its own names
    (:func:`keys.canonical_run_facts`): it is taken from its names alone (``os.listdir``:
    no entry objects), each taken to be the file Perstack wrote, and the facts of its
    names are kept for the summary; any other is walked entry by entry.
    """
    trees = []
    access, listdir, facts_of, job_file = (
        os.access,
        os.listdir,
        keys.canonical_run_facts,
        keys.JOB_FILE,
    )
    for job_id in job_ids:
        path = f"{jobs_path}/{job_id}"
        prefix = f"{keys.JOBS}{job_id}/"
        tree = JobTree(job_id)
        lines = tree.lines
        # "job.json" < "runs/": key order; access() raises nothing for the many without one
        if access(f"{path}/{job_file}", os.F_OK):
            line = _line(f"{path}/{job_file}", prefix + job_file)
            if line is not None:
                tree.has_job_file = True
                lines.append(line)
        run_ids = _listed(listdir, f"{path}/runs", f"{prefix}runs/")
        if run_ids is None:
            if not tree.has_job_file and not os.path.isdir(path):
                continue  # removed since jobs/ was listed
            run_ids = []
        run_ids.sort()  # name order is key order for folders
        for run_id in run_ids:
            folder = f"{prefix}runs/{run_id}/"
            run_path = f"{path}/runs/{run_id}"
            try:
                names = listdir(run_path)
            except (FileNotFoundError, NotADirectoryError):
                continue  # a file in runs/ is no run; or it was removed meanwhile
            except PermissionError as error:
                raise StorageError(
                    f"cannot list {run_path}: permission denied", key=folder
                ) from error
            names.sort()
            facts = facts_of(names)
            if facts is not None:
                tree.run_facts[run_id] = facts
                files = list(map(folder.__add__, names))
                lines.append("\t\n".join(files) + "\t")
            else:
                before = len(lines)
                files = _walk_folder(
                    _entries(run_path, folder) or [], run_path, folder, _RUN, lines
                )
                if len(lines) == before:  # a run folder that holds no file is not a run
                    continue
            tree.run_keys[run_id] = files
        trees.append(tree)
    return trees


def _walk_folder(
    entries: list[os.DirEntry[str]], path: str, prefix: str, role: int, lines: list[str]
) -> list[str]:
    """Append ``key<TAB>version`` for every file under the folder (in key order) to
    ``lines``; return the keys of the files directly in it, sorted."""
    names = [entry.name for entry in entries if entry.is_file()]
    if len(names) == len(entries):  # files only (the usual)
        return _files(path, prefix, names, role, lines)
    files = []
    for entry in sorted(entries, key=_key_order):
        name = entry.name
        if entry.is_dir(follow_symlinks=False):
            folder = f"{prefix}{name}/"
            _walk_folder(_entries(entry.path, folder) or [], entry.path, folder, _OTHER, lines)
        elif entry.is_file():
            key = prefix + name
            if role == _RUN and name.startswith(_EVENT_PREFIX):
                line: str | None = key + "\t"
            else:
                line = _line(entry.path, key)
            if line is None:
                continue
            files.append(key)
            lines.append(line)
    return files


def _files(path: str, prefix: str, names: list[str], role: int, lines: list[str]) -> list[str]:
    """:func:`_walk_folder` for a folder that holds files only (the usual run folder that
    :func:`_job_trees` does not take from its names: events and a run-setting.json):
    events in bulk (one sort, one join), only the others in turn."""
    if not names:
        return []
    names.sort()
    files = [prefix + name for name in names]
    start = end = len(names)
    if role == _RUN:  # names starting with "event-" are one run of the sorted names
        start = bisect_left(names, _EVENT_PREFIX)
        end = bisect_left(names, _AFTER_EVENTS, start)
        if start == 0 and end == len(names):  # events only: "key<TAB>" lines, no stat
            lines.append("\t\n".join(files) + "\t")
            return files
    texts = {i: _line(f"{path}/{names[i]}", files[i]) for i in range(start)}
    if start < end:
        texts[start] = "\t\n".join(files[start:end]) + "\t"
    texts.update((i, _line(f"{path}/{names[i]}", files[i])) for i in range(end, len(names)))
    lines.extend([text for text in texts.values() if text is not None])  # in key order
    if None in texts.values():  # removed since the folder was listed
        files = [key for i, key in enumerate(files) if texts.get(i, "") is not None]
    return files


_name = attrgetter("name")


def _key_order(entry: os.DirEntry[str]) -> str:
    # a folder's keys all start with "name/": sorting folders as "name/" keeps key order
    return entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name


def _entries(path: str, prefix: str) -> list[os.DirEntry[str]] | None:
    """A folder's entries; ``None`` if it is gone (or no longer a folder)."""
    return _listed(_entries_of, path, prefix)


def _listed(read: Callable[[str], list[T]], path: str, prefix: str) -> list[T] | None:
    """``read(path)``; ``None`` if the folder is gone (or no longer a folder), a
    :class:`StorageError` naming it if it may not be listed."""
    try:
        return read(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError as error:
        raise StorageError(f"cannot list {path}: permission denied", key=prefix) from error


def _line(path: str, key: str) -> str | None:
    """``key<TAB>version`` for a file that is not an event, from one ``stat()`` (links
    followed, as ``list_tree``); ``None`` if it is gone."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError as error:
        raise StorageError(f"cannot read {path}: permission denied", key=key) from error
    if not S_ISREG(info.st_mode):  # a folder (or a link to one) where a file was listed
        return None
    # ObjectInfo(...) without NamedTuple's argument handling: 30,000 of them at 10,000 jobs
    return f"{key}\t{version_of(_new(ObjectInfo, (key, info.st_size, info.st_mtime, '')))}"


_new = tuple.__new__
