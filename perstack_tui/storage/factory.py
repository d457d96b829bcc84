"""Build a storage from a :class:`StorageConfig`; boto3 is imported only for S3 and R2."""

from __future__ import annotations

import argparse
import sys

from ..config import ConfigError, ResolvedStorage, StorageConfig, resolve_storage
from .base import KeyValueStorage


def create_storage(config: StorageConfig) -> KeyValueStorage:
    """The backend ``config`` names; the S3/R2 module (and boto3) is imported only here."""
    if config.type == "filesystem":
        from .filesystem import FileSystemStorage

        return FileSystemStorage(config.path or "perstack")
    if config.type == "memory":
        from .memory import MemoryStorage

        return MemoryStorage()
    if config.type in ("s3", "r2"):
        s3 = _import_s3()
        if config.type == "s3":
            return s3.S3Storage(
                config.bucket or "",
                config.prefix,
                region=config.region,
                endpoint=config.endpoint,
                force_path_style=config.force_path_style,
                access_key_id=config.access_key_id,
                secret_access_key=config.secret_access_key,
            )
        return s3.R2Storage(
            config.account_id or "",
            config.bucket or "",
            config.prefix,
            access_key_id=config.access_key_id,
            secret_access_key=config.secret_access_key,
            endpoint=config.endpoint,
        )
    raise ConfigError(f"unknown storage type {config.type!r}, expected filesystem, s3 or r2")


def _import_s3():  # type: ignore[no-untyped-def]
    try:
        from . import s3
    except ImportError as error:
        if error.name in ("boto3", "botocore") or (error.name or "").startswith("botocore."):
            raise ConfigError(
                "the s3 and r2 storages need boto3: pip install boto3 (or reinstall perstack-tui)"
            ) from error
        raise
    return s3


def open_storage(args: argparse.Namespace) -> tuple[KeyValueStorage, ResolvedStorage]:
    """The storage named by ``--storage``/``--config`` (or found), warnings printed to stderr."""
    resolved = resolve_storage(getattr(args, "storage", None), getattr(args, "config", None))
    for warning in resolved.warnings:
        print(f"perstack-tui: warning: {warning}", file=sys.stderr)
    return create_storage(resolved.config), resolved
