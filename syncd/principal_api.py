"""A principal's data over HTTP (DESIGN.md §1.11): export and erasure."""

from __future__ import annotations

from starlette.routing import Route

__all__ = ["routes"]


def routes() -> list[Route]:
    return []
