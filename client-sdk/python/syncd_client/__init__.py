"""syncd's Python SDK: offline-first documents over one WebSocket, and the change feed.

- :class:`Client` opens many documents over ``/v1/sync`` (the Hocuspocus framing), keeps each
  document's state and unacknowledged edits in an SQLite offline store, and reconnects.
- :class:`Document` is one synced pycrdt replica, with typed ``journal()``/``canvas()`` views.
- :class:`FeedSubscriber` follows the change feed with a persisted cursor.
- :class:`RecoveredCopy` is a local replica set aside, not merged, because the server's history
  of its document was rewritten (the epoch guard, ``epoch.py``).
"""

from .client import Client, PermanentClose
from .document import Document, DocumentState
from .epoch import RecoveredCopy
from .feed import FeedSubscriber
from .offline_store import OfflineStore

__all__ = [
    "Client",
    "Document",
    "DocumentState",
    "FeedSubscriber",
    "OfflineStore",
    "PermanentClose",
    "RecoveredCopy",
]
