"""Consent and audit over HTTP (DESIGN.md §1.11): consent per principal, the audit trail."""

from __future__ import annotations

from starlette.routing import Route

__all__ = ["routes"]


def routes() -> list[Route]:
    return []
