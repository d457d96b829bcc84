"""An in-memory storage for tests and benchmarks' floors."""

from __future__ import annotations

import time

from .base import KeyValueStorage, NotFoundError, ObjectInfo, StorageInfo


class MemoryStorage(KeyValueStorage):
    """Keys in a dict; same behaviour as every other backend."""

    def __init__(self, name: str = "memory") -> None:
        super().__init__()
        self.name = name
        self.objects: dict[str, tuple[bytes, float]] = {}

    def storage_info(self) -> StorageInfo:
        return StorageInfo("memory", f"memory:{self.name}")

    async def list_prefixes(self, prefix: str) -> list[str]:
        names = set()
        for key in self.objects:
            if key.startswith(prefix):
                rest = key[len(prefix) :]
                if "/" in rest:
                    names.add(rest.split("/", 1)[0])
        return sorted(names)

    async def list_objects(self, prefix: str, start_after: str | None = None) -> list[ObjectInfo]:
        return sorted(
            (
                ObjectInfo(key, len(data), modified)
                for key, (data, modified) in self.objects.items()
                if key.startswith(prefix)
                and "/" not in key[len(prefix) :]
                and (start_after is None or key > start_after)
            ),
            key=lambda o: o.key,
        )

    async def list_tree(self, prefix: str, *, stat: bool = False) -> list[ObjectInfo]:
        return sorted(
            (
                ObjectInfo(key, len(data), modified)
                for key, (data, modified) in self.objects.items()
                if key.startswith(prefix)
            ),
            key=lambda o: o.key,
        )

    async def read_bytes(self, key: str) -> bytes:
        try:
            return self.objects[key][0]
        except KeyError:
            raise NotFoundError(f"memory:{key}: no such key", key=key) from None

    async def write_bytes(self, key: str, data: bytes) -> None:
        self.objects[key] = (data, time.time())
