"""Who may do what with a document (DESIGN.md §1.3), decided once per connection.

:func:`decide` is a pure function of the caller's identity, the document id and its stored
metadata. Its result, a :class:`Grant`, is kept on the connection, so checking each message
costs an attribute read, not a query; an access change re-runs :func:`decide` for the live
connections of that document (see ``Daemon.access_changed``).

:class:`Authorizer` is the one place every endpoint asks: both sockets (through
``session.admit``), the HTTP API and the feed. What it refuses is a :class:`Refusal` whose
``reason`` each transport maps, in one table of its own, to what it tells the client: a close
code (``syncd/session.py``) or an HTTP status (``syncd/http_api.py``).

Rules:

- ``OWNER/NAME`` belongs to ``OWNER``. Only the owner, or a service/admin of the tenant, may
  bring it into being, which is what makes creating a document offline safe.
- private (default): the owner only. shared: the owner plus each granted principal as
  ``viewer`` (reads, presence; edits dropped) or ``editor``.
- services and admins read and write every document of their tenant, under their own name.
- everyone else is refused with the same answer whether or not the document exists, so a
  refusal never tells that a document exists.
- a service whose token names a ``purpose`` reads only through the consent gate: the feed and
  ``GET …/state``; it may write (``POST …/updates``); every other document endpoint refuses it
  (``PURPOSE_BOUND``).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from storage import DocKey, DocMeta, Store

from .docid import DocId, InvalidDocId, is_principal
from .tokens import Identity, InvalidToken, TokenKeys

if TYPE_CHECKING:
    from .room import Room

__all__ = [
    "GRANTABLE",
    "NO_ACCESS",
    "Authorizer",
    "DocRole",
    "Grant",
    "Mode",
    "Refusal",
    "RefusalReason",
    "decide",
    "parse_doc_id",
    "validate_access",
]

NO_ACCESS = "no access to this document"

_E = TypeVar("_E", bound=enum.StrEnum)


class Mode(enum.StrEnum):
    """A document's access mode; a ``str`` enum, so stored values and JSON are its strings."""

    PRIVATE = "private"  # the owner only (the default)
    SHARED = "shared"  # the owner and the principals it grants


class DocRole(enum.StrEnum):
    """What a caller is to one document (a ``str`` enum, like :class:`Mode`)."""

    OWNER = "owner"
    SERVICE = "service"
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"


# The roles an owner grants (the values of a document's stored grants).
GRANTABLE = (DocRole.VIEWER, DocRole.EDITOR)


class RefusalReason(enum.Enum):
    """Why an endpoint refused; each transport has one table from these to its own codes."""

    BAD_DOCUMENT_ID = "bad_document_id"  # not OWNER/NAME as DESIGN.md §1.3 defines it
    UNAUTHENTICATED = "unauthenticated"  # missing, malformed, forged or expired token
    NO_ACCESS = "no_access"  # also: absent, and the caller may not create it
    DELETED = "deleted"  # a deleted document the caller could otherwise see
    NOT_PRIVILEGED = "not_privileged"  # an endpoint for services and admins (the feed)
    UNAVAILABLE = "unavailable"  # the database cannot be read now: try again later
    # A service bound to a purpose reads only where consent is enforced: the feed and the
    # consent-gated state read (docs/privacy.md). A socket, versions or activity would bypass it.
    PURPOSE_BOUND = "purpose_bound"


class Refusal(Exception):
    """A refused connection or request: ``reason`` for the transport, ``message`` for people."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"Refusal({self.reason.name}, {self.message!r})"


@dataclass(frozen=True, slots=True)
class Grant:
    identity: Identity
    doc: DocId
    key: DocKey  # the document in the caller's tenant
    role: DocRole

    @property
    def readonly(self) -> bool:
        return self.role is DocRole.VIEWER

    @property
    def may_create(self) -> bool:
        """May bring the document into being (DESIGN.md §1.3: offline creation is safe)."""
        return self.role in (DocRole.OWNER, DocRole.SERVICE, DocRole.ADMIN)

    @property
    def may_manage(self) -> bool:
        """May change the access settings or delete the document."""
        return self.role in (DocRole.OWNER, DocRole.ADMIN)


def decide(identity: Identity, doc: DocId, meta: DocMeta | None) -> Grant:
    """The caller's rights on ``doc`` given its metadata (``None``: it does not exist).

    Raises:
        Refusal: ``DELETED`` for a deleted document the caller could see, ``NO_ACCESS``
            otherwise (the same whether or not the document exists).
    """
    role = _role_of(identity, doc, meta)
    if role is None:
        raise Refusal(RefusalReason.NO_ACCESS, NO_ACCESS)
    if meta is not None and meta.deleted:
        raise Refusal(RefusalReason.DELETED, "document deleted")
    return Grant(identity, doc, DocKey(identity.tenant, str(doc)), role)


def _role_of(identity: Identity, doc: DocId, meta: DocMeta | None) -> DocRole | None:
    if identity.sub == doc.owner:
        return DocRole.OWNER
    if identity.privileged:
        return DocRole(identity.role.value)
    if meta is None or meta.mode != Mode.SHARED:
        return None
    granted = meta.grants.get(identity.sub)
    # Only what an owner can grant counts: a stored value that is neither is no access at all.
    return DocRole(granted) if granted in GRANTABLE else None


def parse_doc_id(value: str) -> DocId:
    """``OWNER/NAME`` as a :class:`DocId`.

    Raises:
        Refusal: ``BAD_DOCUMENT_ID``, saying what is wrong with it.
    """
    try:
        return DocId.parse(value)
    except InvalidDocId as exc:
        raise Refusal(RefusalReason.BAD_DOCUMENT_ID, str(exc)) from exc


def validate_access(owner: str, body: object) -> tuple[Mode, dict[str, DocRole]]:
    """Check a ``PUT …/access`` body; returns (mode, grants) or raises ``ValueError``."""
    if not isinstance(body, Mapping):
        raise ValueError("body must be a JSON object {mode, grants}")
    mode = _member(Mode, body.get("mode"))
    if mode is None:
        raise ValueError(f"mode must be one of {', '.join(Mode)}")
    grants = body.get("grants", {})
    if not isinstance(grants, Mapping):
        raise ValueError("grants must be an object {principal: role}")
    out: dict[str, DocRole] = {}
    for principal, value in grants.items():
        if not isinstance(principal, str) or not is_principal(principal):
            raise ValueError(f"invalid principal {principal!r}")
        if principal == owner:
            raise ValueError("the owner cannot be granted a role: it owns the document")
        role = _member(DocRole, value)
        if role not in GRANTABLE:
            raise ValueError(f"role of {principal} must be one of {', '.join(GRANTABLE)}")
        out[principal] = role
    return mode, out


def _member(kind: type[_E], value: object) -> _E | None:
    """The member of ``kind`` whose value is ``value`` (a string from JSON), else ``None``."""
    if not isinstance(value, str):
        return None
    try:
        return kind(value)
    except ValueError:
        return None


class Authorizer:
    """Identity from tokens, and :func:`decide` over the stored metadata, for every endpoint."""

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

    @staticmethod
    def refuse_purpose_bound(identity: Identity) -> None:
        """Raises:
        Refusal: ``PURPOSE_BOUND`` for a service bound to a purpose (the gate is elsewhere)."""
        if identity.bound_purpose is not None:
            raise Refusal(
                RefusalReason.PURPOSE_BOUND,
                f"a service bound to the purpose {identity.bound_purpose!r} reads documents "
                "through the feed or GET …/state, where consent is enforced",
            )

    async def refuse_erased(self, tenant: str, sub: str) -> None:
        """For endpoints that store a principal's name (consent, push subscriptions): an erased
        principal (or an unexpired token of theirs) must not bring the name back.

        Raises:
            Refusal: ``UNAUTHENTICATED``. StoreUnavailable: the check could not be read.
        """
        if await self.store.principal_erased(tenant, sub):
            raise Refusal(RefusalReason.UNAUTHENTICATED, "this principal was erased")

    def identify(self, token: str | None) -> Identity:
        """Raises:
        Refusal: ``UNAUTHENTICATED``, saying why (missing, expired, invalid)."""
        try:
            return self.keys.verify(token)
        except InvalidToken as exc:
            raise Refusal(RefusalReason.UNAUTHENTICATED, str(exc)) from exc

    async def authorize(self, identity: Identity, doc: DocId) -> Grant:
        """The caller's grant for a connection: decided against the loaded room's metadata
        when there is one, else against the store's (one query for callers arriving together).

        Raises:
            Refusal: as :func:`decide`. StoreUnavailable: the metadata could not be read.
        """
        self.refuse_purpose_bound(identity)
        key = DocKey(identity.tenant, str(doc))
        room = self._loaded(key) if self._loaded is not None else None
        if room is not None and room.meta is not None:
            return decide(identity, doc, room.meta)
        meta = await self._read_meta(key)
        if room is not None and meta is not None:
            room.meta = meta
        return decide(identity, doc, meta)

    async def authorize_stored(
        self, identity: Identity, doc: DocId, *, purpose_bound_ok: bool = False
    ) -> tuple[Grant, DocMeta | None]:
        """The caller's grant decided against the store's metadata, and that metadata (the HTTP
        API answers with it: its ``seq`` and times are the store's, not a loaded room's).
        ``purpose_bound_ok``: the endpoint enforces consent itself (the state read) or shows
        nothing of the document (a write), so a purpose-bound service may call it.

        Raises:
            Refusal: as :func:`decide`, or ``PURPOSE_BOUND``. StoreUnavailable: the metadata
                could not be read.
        """
        if not purpose_bound_ok:
            self.refuse_purpose_bound(identity)
        meta = await self.store.meta(DocKey(identity.tenant, str(doc)))
        return decide(identity, doc, meta), meta

    def recheck(self, grant: Grant, room: Room) -> Grant:
        """Decide again against the loaded room's current metadata, just before joining it: an
        access change may have landed while this connection was being authorized."""
        if room.meta is None:
            return grant
        return decide(grant.identity, grant.doc, room.meta)

    def feed_access(self, token: str | None) -> Identity:
        """The identity of a feed subscriber: the feed is for services and admins.

        Raises:
            Refusal: ``UNAUTHENTICATED``, or ``NOT_PRIVILEGED`` for a user's token.
        """
        identity = self.identify(token)
        if not identity.privileged:
            raise Refusal(RefusalReason.NOT_PRIVILEGED, "the feed is for services and admins")
        return identity

    async def _read_meta(self, key: DocKey) -> DocMeta | None:
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self.store.meta(key))
            self._reading[key] = reading
            reading.add_done_callback(lambda _: self._reading.pop(key, None))
        return await asyncio.shield(reading)
