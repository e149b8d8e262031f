"""Persistence for syncd: the Store contract and its SQLAlchemy implementation."""

from .commit import GroupCommit
from .sql import SqlStore
from .store import DocKey, LoadedDoc, NewUpdate, Store, StoreUnavailable

__all__ = [
    "DocKey",
    "GroupCommit",
    "LoadedDoc",
    "NewUpdate",
    "SqlStore",
    "Store",
    "StoreUnavailable",
]
