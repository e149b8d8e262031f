"""Hand-made Yjs v1 updates that yrs (pycrdt 0.14) cannot survive or apply, as found by the
adversarial probe of issue 8. Each is the smallest shape that shows the problem."""

from __future__ import annotations

from crdt.protocol import write_var_string as vs
from crdt.protocol import write_var_uint as u

_ANY = 8
_STRING = 4
_ANY_ARRAY, _ANY_STRING = 117, 119


def _one_item(client: int, clock: int, body: bytes) -> bytes:
    """An update of one struct of ``client`` at ``clock``, and an empty delete set."""
    return u(1) + u(1) + u(client) + u(clock) + body + u(0)


def deep_any(client: int, depth: int = 30_000) -> bytes:
    """An Any value nested ``depth`` arrays deep in root array "a": a stack overflow (SIGSEGV)
    in ``pycrdt.get_state`` at 30,000; smaller depths pass and crash readers later."""
    value = bytes((_ANY_ARRAY, 1)) * depth + bytes((_ANY_STRING,)) + vs("x")
    return _one_item(client, 0, bytes((_ANY,)) + u(1) + vs("a") + u(1) + value)


def zero_length(client: int) -> bytes:
    """A map entry whose content is an Any with no values: an item of length 0."""
    return _one_item(client, 0, bytes((_ANY | 0x20,)) + u(1) + vs("m") + vs("k") + u(0))


def text_item(client: int) -> bytes:
    """A valid update: "ab" in root text "t", the item (client, 0)."""
    return _one_item(client, 0, bytes((_STRING,)) + u(1) + vs("t") + vs("ab"))


def string_parent(client: int) -> bytes:
    """An item whose parent is the string item of :func:`text_item`, not a shared type. Only
    a document can tell: the strict decoder passes it, ``Doc.apply_update`` refuses it."""
    parent_id = u(0) + u(client) + u(0)
    return _one_item(
        client, 2, bytes((_ANY,)) + parent_id + u(1) + bytes((_ANY_STRING,)) + vs("x")
    )
