"""Who may open a document, and how: the decision made once per connection.

The decision for a connection is computed when it opens and kept on the connection (a
:class:`Grant`), so checking each message costs an attribute read, not a query.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage import DocKey

from .docid import DocId
from .peer import CloseCode
from .tokens import Identity, InvalidToken, TokenKeys

__all__ = ["Access", "Grant", "Refusal"]


class Refusal(Exception):
    """A connection or request is refused; ``code`` is the WebSocket close code (44xx)."""

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


class Access:
    """Turns a bearer token and a document id into a :class:`Grant` or a :class:`Refusal`.

    The owner of ``OWNER/NAME`` is ``OWNER``: only the owner, or a service or admin of the
    tenant, may bring the document into being, which is what makes creating a document offline
    safe. Everyone else is refused (4403) with the same answer whether or not it exists.
    """

    def __init__(self, keys: TokenKeys) -> None:
        self.keys = keys

    def identify(self, token: str | None) -> Identity:
        try:
            return self.keys.verify(token)
        except InvalidToken as exc:
            raise Refusal(CloseCode.UNAUTHORIZED, str(exc)) from exc

    async def authorize(self, token: str | None, doc: DocId) -> Grant:
        identity = self.identify(token)
        key = DocKey(identity.tenant, str(doc))
        if identity.sub == doc.owner or identity.privileged:
            return Grant(identity, key, readonly=False, may_create=True)
        raise Refusal(CloseCode.FORBIDDEN, "no access to this document")
