"""Deterministic clocks, ids and update capture for the crdt.schemas tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from pycrdt import Doc

from crdt.schemas import (
    Canvas,
    Journal,
    iso_utc,
)

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """Advances one second per call so that every stamp is distinct and predictable."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        return START + timedelta(seconds=self.calls - 1)


def stamp(seconds: int) -> str:
    return iso_utc(START + timedelta(seconds=seconds))


def ids(prefix: str) -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter):03d}"


@contextmanager
def updates(doc: Doc) -> Iterator[list[bytes]]:
    """Collect the updates `doc` emits inside the block."""
    seen: list[bytes] = []
    subscription = doc.observe(lambda event: seen.append(event.update))
    try:
        yield seen
    finally:
        doc.unobserve(subscription)


def sync(*docs: Doc) -> None:
    for source, target in itertools.permutations(docs, 2):
        target.apply_update(source.get_update())


def journal(prefix: str = "e") -> Journal:
    return Journal.create("Dreams", now=FakeClock(), new_id=ids(prefix))


def canvas(prefix: str = "c", author: str | None = "ana") -> Canvas:
    return Canvas.create("Reading", author=author, now=FakeClock(), new_id=ids(prefix))
