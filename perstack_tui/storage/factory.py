"""Build a storage from a :class:`StorageConfig`; boto3 is imported only for S3 and R2."""

from __future__ import annotations

import argparse
import sys

from ..config import ResolvedStorage, StorageConfig, resolve_storage
from .base import KeyValueStorage


def create_storage(config: StorageConfig) -> KeyValueStorage:
    if config.type == "filesystem":
        from .filesystem import FileSystemStorage

        return FileSystemStorage(config.path or "perstack")
    if config.type == "memory":
        from .memory import MemoryStorage

        return MemoryStorage()
    raise NotImplementedError(config.type)


def open_storage(args: argparse.Namespace) -> tuple[KeyValueStorage, ResolvedStorage]:
    """The storage named by ``--storage``/``--config`` (or found), warnings printed to stderr."""
    resolved = resolve_storage(getattr(args, "storage", None), getattr(args, "config", None))
    for warning in resolved.warnings:
        print(f"perstack-tui: warning: {warning}", file=sys.stderr)
    return create_storage(resolved.config), resolved
