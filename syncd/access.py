"""Who may do what with a document (DESIGN.md §1.3), decided once per connection.

:func:`decide` is a pure function of the caller's identity, the document id and its stored
metadata. Its result, a :class:`Grant`, is kept on the connection, so checking each message
costs an attribute read, not a query; an access change re-runs :func:`decide` for the live
connections of that document (see ``Daemon.access_changed``).

Rules:

- ``OWNER/NAME`` belongs to ``OWNER``. Only the owner, or a service/admin of the tenant, may
  bring it into being, which is what makes creating a document offline safe.
- private (default): the owner only. shared: the owner plus each granted principal as
  ``viewer`` (reads, presence; edits dropped) or ``editor``.
- services and admins read and write every document of their tenant, under their own name.
- everyone else is refused with the same answer whether or not the document exists, so a
  refusal never tells that a document exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from storage import DocKey, DocMeta, Store

from .docid import DocId, InvalidDocId, is_principal
from .peer import CloseCode
from .tokens import Identity, InvalidToken, TokenKeys

if TYPE_CHECKING:
    from .room import Room

__all__ = ["MODES", "ROLES", "Access", "Grant", "Refusal", "decide", "validate_access"]

MODES = ("private", "shared")
ROLES = ("viewer", "editor")

NO_ACCESS = "no access to this document"


class Refusal(Exception):
    """A refused connection or request; ``code`` is the WebSocket close code (44xx)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Grant:
    identity: Identity
    key: DocKey
    readonly: bool
    may_create: bool
    role: str  # "owner", "service", "admin", "editor" or "viewer"

    @property
    def may_manage(self) -> bool:
        """May change the access settings or delete the document."""
        return self.role in ("owner", "admin")


def decide(identity: Identity, doc: DocId, meta: DocMeta | None) -> Grant:
    """The caller's rights on ``doc`` given its metadata (``None``: it does not exist).

    Raises:
        Refusal: 4404 for a deleted document the caller could see, 4403 otherwise.
    """
    key = DocKey(identity.tenant, str(doc))
    if identity.sub == doc.owner:
        role = "owner"
    elif identity.privileged:
        role = identity.role
    elif meta is not None and meta.mode == "shared" and identity.sub in meta.grants:
        role = meta.grants[identity.sub]
    else:
        raise Refusal(CloseCode.FORBIDDEN, NO_ACCESS)
    if meta is not None and meta.deleted:
        raise Refusal(CloseCode.NOT_FOUND, "document deleted")
    if role in ("viewer", "editor") and meta is None:
        raise Refusal(CloseCode.FORBIDDEN, NO_ACCESS)
    return Grant(
        identity,
        key,
        readonly=role == "viewer",
        may_create=role in ("owner", "service", "admin"),
        role=role,
    )


def validate_access(owner: str, body: object) -> tuple[str, dict[str, str]]:
    """Check a ``PUT …/access`` body; returns (mode, grants) or raises ``ValueError``."""
    if not isinstance(body, Mapping):
        raise ValueError("body must be a JSON object {mode, grants}")
    mode = body.get("mode")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    grants = body.get("grants", {})
    if not isinstance(grants, Mapping):
        raise ValueError("grants must be an object {principal: role}")
    out: dict[str, str] = {}
    for principal, role in grants.items():
        if not isinstance(principal, str) or not is_principal(principal):
            raise ValueError(f"invalid principal {principal!r}")
        if principal == owner:
            raise ValueError("the owner cannot be granted a role: it owns the document")
        if role not in ROLES:
            raise ValueError(f"role of {principal} must be one of {', '.join(ROLES)}")
        out[principal] = role
    return mode, out


class Access:
    """Identity from tokens plus :func:`decide` over the stored metadata."""

    def __init__(
        self,
        keys: TokenKeys,
        store: Store,
        loaded: Callable[[DocKey], Room | None] | None = None,
    ) -> None:
        self.keys = keys
        self.store = store
        # A loaded room keeps its document's metadata (kept current by access changes), so
        # joining a busy document costs no query; clients arriving together before it is loaded
        # share one query.
        self._loaded = loaded
        self._reading: dict[DocKey, asyncio.Future[DocMeta | None]] = {}

    def identify(self, token: str | None) -> Identity:
        try:
            return self.keys.verify(token)
        except InvalidToken as exc:
            raise Refusal(CloseCode.UNAUTHORIZED, str(exc)) from exc

    async def authorize(self, token: str | None, doc: DocId) -> Grant:
        identity = self.identify(token)
        key = DocKey(identity.tenant, str(doc))
        room = self._loaded(key) if self._loaded is not None else None
        if room is not None and room.meta is not None:
            return decide(identity, doc, room.meta)
        meta = await self._read_meta(key)
        if room is not None and meta is not None:
            room.meta = meta
        return decide(identity, doc, meta)

    def recheck(self, grant: Grant, room: Room) -> Grant:
        """Decide again against the loaded room's current metadata, just before joining it: an
        access change may have landed while this connection was being authorized."""
        if room.meta is None:
            return grant
        return decide(grant.identity, DocId.parse(grant.key.name), room.meta)

    async def _read_meta(self, key: DocKey) -> DocMeta | None:
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self.store.meta(key))
            self._reading[key] = reading
            reading.add_done_callback(lambda _: self._reading.pop(key, None))
        return await asyncio.shield(reading)

    @staticmethod
    def parse_doc(owner: str, name: str) -> DocId:
        try:
            return DocId.of(owner, name)
        except InvalidDocId as exc:
            raise Refusal(CloseCode.MALFORMED, str(exc)) from exc
