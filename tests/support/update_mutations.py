"""Mutations of real Yjs updates for fuzzing the strict decoder (deterministic given the RNG).

Byte-level, with a bias towards what breaks a length-prefixed format: lengths and counts set
to 0 or huge, info bytes and Any tags swapped for others, chunks of other updates spliced in.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

# Values that mean something in the format: refs and flag bits of an info byte, Any tags,
# varint edges, parent infos.
INTERESTING = (
    *range(0, 11),  # content refs, small lengths, parent info
    0x20,
    0x27,
    0x28,
    0x40,
    0x44,
    0x48,
    0x80,
    0x81,
    0x84,
    0x87,
    0x88,
    0xC4,
    0xC8,
    0xE8,
    *range(116, 128),  # lib0 Any tags
    0x3F,
    0x7F,
    0xFF,
)
HUGE_VARINTS = (
    b"\xff\xff\xff\xff\x07",  # 2**31 - 1
    b"\x81\x80\x80\x80\x08",  # 2**31 + 1
    b"\xff\xff\xff\xff\x0f",  # 2**32 - 1
    b"\x80\x80\x80\x80\x10",  # 2**32
    b"\xff\xff\xff\xff\xff\xff\xff\x0f",  # 2**53 - 1 and beyond
    b"\x80\x80\x80\x80\x80\x20",  # 2**40
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # 64 bits
    b"\x80",  # a varint cut short
)


def _flip(rng: random.Random, data: bytearray, _others: Sequence[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def _interesting(rng: random.Random, data: bytearray, _others: Sequence[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] = rng.choice(INTERESTING)


def _random_byte(rng: random.Random, data: bytearray, _others: Sequence[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] = rng.randrange(256)


def _truncate(rng: random.Random, data: bytearray, _others: Sequence[bytes]) -> None:
    del data[rng.randrange(len(data) + 1) :]


def _insert(rng: random.Random, data: bytearray, _others: Sequence[bytes]) -> None:
    at = rng.randrange(len(data) + 1)
    data[at:at] = bytes(rng.choice(INTERESTING) for _ in range(rng.randint(1, 4)))


def _delete(rng: random.Random, data: bytearray, _others: Sequence[bytes]) -> None:
    if data:
        at = rng.randrange(len(data))
        del data[at : at + rng.randint(1, 8)]


def _huge(rng: random.Random, data: bytearray, _others: Sequence[bytes]) -> None:
    if data:
        at = rng.randrange(len(data))
        data[at : at + 1] = rng.choice(HUGE_VARINTS)


def _splice(rng: random.Random, data: bytearray, others: Sequence[bytes]) -> None:
    other = rng.choice(others)
    if other:
        start = rng.randrange(len(other))
        chunk = other[start : start + rng.randint(1, 32)]
        at = rng.randrange(len(data) + 1)
        if rng.random() < 0.5:
            data[at:at] = chunk
        else:
            data[at : at + len(chunk)] = chunk


def _repeat(rng: random.Random, data: bytearray, _others: Sequence[bytes]) -> None:
    if data:
        start = rng.randrange(len(data))
        chunk = data[start : start + rng.randint(1, 16)]
        data[start:start] = chunk * rng.randint(1, 3)


MUTATORS = (
    _flip,
    _interesting,
    _interesting,
    _random_byte,
    _truncate,
    _insert,
    _delete,
    _huge,
    _splice,
    _repeat,
)


def mutate(rng: random.Random, update: bytes, others: Sequence[bytes]) -> bytes:
    """``update`` with one to three random mutations."""
    data = bytearray(update)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        rng.choice(MUTATORS)(rng, data, others)
    return bytes(data)
