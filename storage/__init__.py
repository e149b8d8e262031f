"""Persistence for syncd: the Store contract and its SQLAlchemy implementation."""

from .commit import GroupCommit
from .feed import FeedEvent, FeedPage
from .sql import SqlStore
from .store import DocKey, DocMeta, LoadedDoc, NewUpdate, Store, StoreUnavailable

__all__ = [
    "DocKey",
    "DocMeta",
    "FeedEvent",
    "FeedPage",
    "GroupCommit",
    "LoadedDoc",
    "NewUpdate",
    "SqlStore",
    "Store",
    "StoreUnavailable",
]
