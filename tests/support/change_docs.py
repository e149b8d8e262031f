"""Schema documents whose changes a test follows with both decoders.

`Follower` feeds each update both to a streaming `ChangeDecoder` and to the stateless
`decode_changes` (with the state before it) and checks that they agree, so every test covers
both.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pycrdt import Doc

from crdt.changes import Change, ChangeDecoder, decode_changes
from crdt.schemas import CANVAS_SCHEMA, JOURNAL_SCHEMA, Canvas, Journal
from crdt.updates import merge

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
STAMP = "2024-05-01T12:00:00.000Z"


def clock() -> Callable[[], datetime]:
    ticks = itertools.count()
    return lambda: START + timedelta(seconds=next(ticks))


def ids(prefix: str) -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter):03d}"


def bare(change: Change) -> dict[str, Any]:
    """A change as JSON without the fields every change has."""
    data = change.to_json()
    for key in ("schema", "id", "principal"):
        data.pop(key)
    return data


class Follower:
    """Follows one document update by update, decoding each both ways."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self.decoder = ChangeDecoder()
        self.states: list[bytes] = []

    def decode(self, update: bytes, principal: str | None = "ana") -> list[Change]:
        before = merge(self.states) if self.states else None
        changes = self.decoder.apply(update, principal=principal)
        again = decode_changes(before, update, principal=principal)
        assert [c.to_json() for c in again] == [c.to_json() for c in changes]
        assert all(change.principal == principal for change in changes)
        self.states.append(update)
        return changes

    def step(self, edit: Callable[[], Any], principal: str | None = "ana") -> list[Change]:
        """Run `edit` as one transaction on the followed doc and decode its update."""
        before = self.doc.get_state()
        with self.doc.transaction():
            edit()
        return self.decode(self.doc.get_update(before), principal)


@pytest.fixture
def journal() -> Iterator[tuple[Journal, Follower]]:
    book = Journal(Doc(), now=clock(), new_id=ids("e"))
    follower = Follower(book.doc)
    [created] = follower.step(lambda: book.init("Dreams"))
    assert (created.type, created.schema, created.id) == ("journal_created", JOURNAL_SCHEMA, None)
    assert bare(created) == {"type": "journal_created", "title": "Dreams"}
    yield book, follower


@pytest.fixture
def canvas() -> Iterator[tuple[Canvas, Follower]]:
    board = Canvas(Doc(), author="ana", now=clock(), new_id=ids("c"))
    follower = Follower(board.doc)
    [created] = follower.step(lambda: board.init("Reading", background="#fff"))
    assert (created.type, created.schema) == ("canvas_created", CANVAS_SCHEMA)
    assert bare(created) == {
        "type": "canvas_created",
        "title": "Reading",
        "template": "blank",
        "background": "#fff",
    }
    yield board, follower
