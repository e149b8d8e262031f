"""Where a request's token comes from: one rule for every endpoint (docs/protocol.md, "Tokens").

An ``Authorization: Bearer`` header wins over a ``?token=`` query parameter. Headers stay out of
access logs, proxy logs and browser history, so a client that can send one should; browsers'
WebSockets cannot set headers, so the query still works on its own.

A header with the Bearer scheme is the request's credential even when it is malformed (empty,
or with spaces inside): the request is then refused as carrying an invalid token, never
answered with the query's token instead, so one request never has two credentials that could
disagree about who is asking. A header with another scheme (``Basic`` from a reverse proxy's
own login, say) is not addressed to syncd and is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["bearer_token"]

_SCHEME = "bearer"


def bearer_token(headers: Mapping[str, str], query_params: Mapping[str, str]) -> str | None:
    """The token the request presents, or ``None`` when it presents none.

    Args:
        headers: the request's headers (case-insensitive lookup, as Starlette's ``Headers``).
        query_params: its query parameters.

    Returns:
        The Bearer header's credential (possibly ``""`` or malformed: verifying it refuses the
        request), else the ``token`` query parameter, else ``None``.

    >>> bearer_token({"authorization": "Bearer h"}, {"token": "q"})
    'h'
    >>> bearer_token({"authorization": "Basic dXNlcjpwdw=="}, {"token": "q"})
    'q'
    """
    header = headers.get("authorization")
    if header is not None:
        scheme, _, credential = header.strip().partition(" ")
        if scheme.lower() == _SCHEME:
            return credential.strip()
    return query_params.get("token")
