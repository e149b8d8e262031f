"""Persistence for syncd: the Store contract and its SQLAlchemy implementation."""

from .commit import GroupCommit
from .feed import FeedEvent, FeedPage
from .sql import SqlStore
from .store import (
    DocKey,
    DocMeta,
    DocumentDeleted,
    LoadedDoc,
    NewUpdate,
    Store,
    StoreUnavailable,
)

__all__ = [
    "DocKey",
    "DocMeta",
    "DocumentDeleted",
    "FeedEvent",
    "FeedPage",
    "GroupCommit",
    "LoadedDoc",
    "NewUpdate",
    "SqlStore",
    "Store",
    "StoreUnavailable",
]
