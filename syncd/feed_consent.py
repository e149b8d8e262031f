"""The feed's consent gate (DESIGN.md §1.11, docs/privacy.md "Consent and audit").

A service token with a ``purpose`` reads the feed through a :class:`ConsentGate`: an update
written by a principal who has not consented to that purpose is served as ``withheld``
(cursor, doc, seq, reason: no principal, no time, no changes, no bytes of it). Consents are
read once per page, for the page's writers only, so a change applies from the next page on.

What a purpose-bound reader sees of a document is its **consented projection**: the consenting
writers' updates as stored, and in place of every other update a placeholder of GC structs
(``crdt/placeholder.py``) that carries none of its content. ``format=updates`` ships those
placeholders (``withheld`` events carry one as ``placeholder``) so a subscriber's Yjs replica is
the projection; ``format=changes`` decodes the consenting updates against the same projection,
so no decoded change (an ``old_x``, a deleted text) can show a non-consenting writer's content.
A reset's snapshot no longer says who wrote what, so a purpose-bound reset carries a
placeholder of the whole state. Services' own writes (origin ``service``) count as consenting:
a service is not a participant. Services without a purpose, and admins, see everything.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pycrdt

from crdt.placeholder import placeholder
from crdt.protocol import ProtocolError
from crdt.replay import check_stored
from crdt.yrs_guard import YrsFailure, apply_update
from storage import FeedEvent
from storage.consent import SqlConsents
from storage.feed import SERVICE_ORIGIN, ConsentedHistory

from .tokens import Identity

__all__ = [
    "ConsentGate",
    "bound_purpose",
    "consent_gate",
    "filler",
    "project",
    "withheld_json",
]

# The Yjs client id of the one item a projection adds (meta.schema, see ``project``): above
# the 32-bit ids every Yjs client draws, so it never meets a real one. Never served.
_SCHEMA_CLIENT = 2**53 - 1


@dataclass(frozen=True, slots=True)
class ConsentGate:
    purpose: str
    granted: frozenset[str]  # the principals asked about who consent

    def consents(self, event: FeedEvent) -> bool:
        if event.type == "reset":
            return False  # a snapshot's writers are unknown
        return event.origin == SERVICE_ORIGIN or event.principal in self.granted

    def all_consent(self, principals: Iterable[str]) -> bool:
        return all(p in self.granted for p in principals)


def bound_purpose(identity: Identity) -> str | None:
    """The purpose a reader's data is filtered for (see ``Identity.bound_purpose``)."""
    return identity.bound_purpose


async def consent_gate(
    consents: SqlConsents,
    identity: Identity,
    events: Iterable[FeedEvent],
    also: Iterable[str] = (),
) -> ConsentGate | None:
    """The gate for one page (one query), or ``None`` for a reader without a purpose.

    ``also``: more principals whose consent the page needs (writers already in a cached
    decoder's projection, see ``syncd/feed_changes.py``)."""
    purpose = bound_purpose(identity)
    if purpose is None:
        return None
    asked = {e.principal for e in events if e.principal and e.origin != SERVICE_ORIGIN}
    asked.update(also)
    granted = await consents.granted(identity.tenant, purpose, asked)
    return ConsentGate(purpose, frozenset(granted))


def withheld_json(event: FeedEvent, *, binary: bool, with_placeholder: bool) -> dict[str, Any]:
    """A withheld update (or a purpose-bound reset) as served: only what the contract lists,
    plus, for ``format=updates``, the placeholder that keeps the subscriber's replica going."""
    cursor = f"c{event.pos:x}"
    if event.type == "reset":
        return {
            "type": "reset",
            "cursor": cursor,
            "doc": event.doc,
            "seq": event.seq,
            "state": _bytes(filler(event.data), binary),
            "reason": "consent",
        }
    out: dict[str, Any] = {
        "type": "withheld",
        "cursor": cursor,
        "doc": event.doc,
        "seq": event.seq,
        "reason": "consent",
    }
    if with_placeholder:
        out["placeholder"] = _bytes(filler(event.data), binary)
    return out


def _bytes(data: bytes, binary: bool) -> Any:
    return data if binary else base64.b64encode(data).decode()


def project(history: ConsentedHistory) -> tuple[bytes, set[str]]:
    """The consented projection of a stored history as one update, and the principals whose
    consent put their content in it. Runs in a worker thread (O(document)).

    A journal or canvas whose ``meta.schema`` a non-consenting writer set would decode as
    ``unknown_schema`` for everyone. A schema name is the document's type, not anyone's
    content, so the projection keeps it, as one item of a client id no Yjs client uses (it is
    only ever decoded against, never served)."""
    doc = pycrdt.Doc()
    revealed: set[str] = set()
    parts: list[bytes] = []
    if history.snapshot is not None:
        parts.append(filler(history.snapshot))
    for row in history.rows:
        if row.consenting:
            parts.append(row.data)
            if row.granted and not row.by_service:
                revealed.add(row.principal)
        else:
            parts.append(filler(row.data))
    _fold(doc, parts)
    if doc.get("meta", type=pycrdt.Map).get("schema") is None:
        schema = _schema(history)
        if isinstance(schema, str):
            stamp = pycrdt.Doc(client_id=_SCHEMA_CLIENT)
            stamp.get("meta", type=pycrdt.Map)["schema"] = schema
            apply_update(doc, stamp.get_update())
    return doc.get_update(), revealed


def _schema(history: ConsentedHistory) -> object:
    """The real document's ``meta.schema`` (all of its history folded)."""
    whole = pycrdt.Doc()
    parts = [history.snapshot] if history.snapshot is not None else []
    _fold(whole, parts + [row.data for row in history.rows])
    return whole.get("meta", type=pycrdt.Map).get("schema")


def _fold(doc: pycrdt.Doc, parts: list[bytes]) -> None:
    for part in parts:
        try:
            check_stored(part)
            apply_update(doc, part)
        except (ProtocolError, YrsFailure):
            continue  # left out, as a load leaves out what fails (crdt/replay.py)


_EMPTY_UPDATE = b"\x00\x00"


def filler(data: bytes) -> bytes:
    """The placeholder of stored data; an empty update for data the strict decoder refuses
    (a snapshot yrs wrote that ``check_stored`` lets through): never its content."""
    try:
        return placeholder(data)
    except ProtocolError:
        return _EMPTY_UPDATE
