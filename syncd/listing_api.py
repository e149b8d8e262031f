"""Listing documents over HTTP: what a principal owns and what is shared with it."""

from __future__ import annotations

from starlette.routing import Route

__all__ = ["routes"]


def routes() -> list[Route]:
    return []
