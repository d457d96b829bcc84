"""Storage backends: one protocol, several places data can live."""

from .base import (
    KeyValueStorage,
    NotFoundError,
    ObjectInfo,
    Storage,
    StorageError,
    StorageInfo,
    dump_compact,
    dump_pretty,
)

__all__ = [
    "KeyValueStorage",
    "NotFoundError",
    "ObjectInfo",
    "Storage",
    "StorageError",
    "StorageInfo",
    "dump_compact",
    "dump_pretty",
]
