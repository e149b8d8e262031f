"""Placeholders for withheld updates (crdt/placeholder.py): ids without content, in yrs and in
stock yjs, so that a purpose-bound replica keeps integrating consenting writers' updates."""

from __future__ import annotations

import base64
import json
import subprocess

import pycrdt
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt.placeholder import placeholder
from crdt.schemas import Canvas
from crdt.updates import validate_update
from tests.support.nodeclient import INTEROP, require_node


def two_writers() -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """Alice and bob on one canvas, each leaning on the other's elements; bob's strings are
    planted."""
    alice = Canvas(pycrdt.Doc(), author="alice")
    bob = Canvas(pycrdt.Doc(), author="bob")
    log: list[tuple[str, bytes]] = []

    def send(writer: Canvas, name: str, edit) -> str | None:  # type: ignore[no-untyped-def]
        before = writer.doc.get_state()
        result = edit()
        update = writer.doc.get_update(before)
        other = bob if writer is alice else alice
        other.doc.apply_update(update)
        log.append((name, update))
        return result

    send(alice, "alice", lambda: alice.init("Board"))
    a1 = send(alice, "alice", lambda: alice.add_card("tarot", "alice-1", 1, 1))
    b1 = send(bob, "bob", lambda: bob.add_card("tarot", "BOB-PLANTED-CARD", 2, 2))
    send(bob, "bob", lambda: bob.add_text("BOB-PLANTED-TEXT", 3, 3))
    send(bob, "bob", lambda: bob.move(a1, 9, 9))
    send(alice, "alice", lambda: alice.move(b1, 5, 5))
    a2 = send(alice, "alice", lambda: alice.add_card("tarot", "alice-2", 4, 4))
    return log, {"a1": a1, "a2": a2, "b1": b1}


def projected(log: list[tuple[str, bytes]], withheld: str) -> list[bytes]:
    return [placeholder(u) if who == withheld else u for who, u in log]


def test_a_placeholder_holds_no_content_and_decodes_strictly():
    log, _ = two_writers()
    for _who, update in log:
        filler = placeholder(update)
        validate_update(filler)
        assert b"BOB" not in filler and b"tarot" not in filler and b"alice" not in filler
        assert len(filler) < len(update)


def test_yrs_integrates_consenting_updates_after_placeholders():
    log, ids = two_writers()
    replica = pycrdt.Doc()
    for update in projected(log, "bob"):
        replica.apply_update(update)
    elements = Canvas(replica).to_json()["elements"]
    assert sorted(elements) == sorted([ids["a1"], ids["a2"]])


def test_stock_yjs_integrates_them_the_same_way():
    node = require_node(["yjs"])
    log, ids = two_writers()

    def run(updates: list[bytes]) -> dict:
        out = subprocess.run(
            [node, str(INTEROP / "apply_updates.mjs")],
            input=json.dumps([base64.b64encode(u).decode() for u in updates]),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(out.stdout)

    with_placeholders = run(projected(log, "bob"))
    assert sorted(with_placeholders["elements"]) == sorted([ids["a1"], ids["a2"]])
    assert with_placeholders["pending"] is False
    assert "BOB" not in json.dumps(with_placeholders)
    without = run([u for who, u in log if who != "bob"])
    assert without["pending"] is True  # yjs waits forever for bob's structs
    assert ids["a2"] not in without["elements"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=1, max_size=25))
def test_withheld_content_never_reaches_a_replica(script):
    """Random edits of two writers: the projection without bob holds none of his strings, and
    every card alice added on her own is in it."""
    alice = Canvas(pycrdt.Doc(), author="alice")
    bob = Canvas(pycrdt.Doc(), author="bob")
    alice.init("Board")
    log = [("alice", alice.doc.get_update())]
    bob.doc.apply_update(log[0][1])
    mine: list[str] = []
    for n, (by_bob, action) in enumerate(script):
        writer, other, name = (bob, alice, "bob") if by_bob else (alice, bob, "alice")
        before = writer.doc.get_state()
        elements = sorted(Canvas(writer.doc).to_json()["elements"])
        if action == 0 or not elements:
            card = writer.add_card("tarot", f"{name.upper()}-SECRET-{n}", n, n)
            if not by_bob:
                mine.append(card)
        elif action == 1:
            writer.move(elements[n % len(elements)], n, n)
        elif action == 2:
            writer.rename(f"{name.upper()}-SECRET-TITLE-{n}")
        else:
            writer.delete(elements[n % len(elements)])
            if not by_bob and elements[n % len(elements)] in mine:
                mine.remove(elements[n % len(elements)])
        update = writer.doc.get_update(before)
        other.doc.apply_update(update)
        log.append((name, update))
    replica = pycrdt.Doc()
    for update in projected(log, "bob"):
        replica.apply_update(update)
    view = Canvas(replica).to_json()
    assert "BOB-SECRET" not in json.dumps(view)
    assert b"BOB-SECRET" not in replica.get_update()
    # Alice's cards that nobody deleted are all there (bob's deletions of them too are kept).
    alive = set(Canvas(alice.doc).to_json()["elements"])
    assert {c for c in mine if c in alive} <= set(view["elements"])
