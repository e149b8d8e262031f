"""Web Push over HTTP (DESIGN.md §1.12): the VAPID key, subscriptions and notify."""

from __future__ import annotations

from starlette.routing import Route

__all__ = ["routes"]


def routes() -> list[Route]:
    return []
