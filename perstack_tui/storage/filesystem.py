"""Perstack's filesystem storage: ``{base}/jobs/...`` on a local disk."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import aiofiles
import aiofiles.os

from .base import KeyValueStorage, NotFoundError, ObjectInfo, StorageError, StorageInfo

#: read_many: at most this many threads, each reading at least this many files in turn
_READ_THREADS = 4
_FILES_PER_THREAD = 16


class FileSystemStorage(KeyValueStorage):
    """A local directory laid out as Perstack's FileSystemStorage writes it."""

    def __init__(self, base: str | os.PathLike[str]) -> None:
        super().__init__()
        self.base = Path(base).expanduser().resolve()

    def path_of(self, key: str) -> Path:
        """The file that holds ``key``; refuses keys that would leave the base directory."""
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"unsafe key {key!r}", key=key)
        return self.base / key

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
        objects = []
        for entry in await self._scandir(prefix):
            key = prefix + entry.name
            if start_after is not None and key <= start_after:
                continue
            try:
                if not entry.is_file():
                    continue
                stat = entry.stat()
            except FileNotFoundError:  # removed between listing and stat
                continue
            objects.append(ObjectInfo(key, stat.st_size, stat.st_mtime))
        objects.sort(key=lambda o: o.key)
        return objects

    async def list_keys(self, prefix: str, start_after: str | None = None) -> list[str]:
        """Names from ``readdir`` alone: no ``stat()`` per file (most of a listing's cost)."""
        names = [
            prefix + entry.name
            for entry in await self._scandir(prefix)
            if entry.is_file() and (start_after is None or prefix + entry.name > start_after)
        ]
        names.sort()
        return names

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

    async def _scandir(self, prefix: str) -> list[os.DirEntry[str]]:
        try:
            return await _scandir(self.path_of(prefix))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except PermissionError as error:
            raise StorageError(
                f"cannot list {self.path_of(prefix)}: permission denied", key=prefix
            ) from error

    async def read_bytes(self, key: str) -> bytes:
        return await asyncio.to_thread(self._read, key)

    async def read_many(self, keys_: Sequence[str]) -> list[bytes | StorageError]:
        """Several files, read in a few threads that each read a run of them: one thread
        hop per run instead of one per file (1,000 small files: ~40 ms, not ~300 ms)."""
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

    def _read(self, key: str) -> bytes:
        path = self.path_of(key)
        try:
            with open(path, "rb") as file:
                return file.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as error:
            raise NotFoundError(f"{path}: no such file", key=key) from error
        except PermissionError as error:
            raise StorageError(f"{path}: permission denied", key=key) from error

    async def write_bytes(self, key: str, data: bytes) -> None:
        path = self.path_of(key)
        try:
            await aiofiles.os.makedirs(path.parent, exist_ok=True)
            async with aiofiles.open(path, "wb") as file:
                await file.write(data)
        except OSError as error:
            raise StorageError(f"cannot write {path}: {error.strerror}", key=key) from error


async def _scandir(path: Path) -> list[os.DirEntry[str]]:
    def scan() -> list[os.DirEntry[str]]:
        with os.scandir(path) as entries:
            return list(entries)

    return await asyncio.to_thread(scan)
