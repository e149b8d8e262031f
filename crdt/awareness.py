"""Awareness (presence) kept by the server, as y-protocols' ``awareness.js`` does, and bounded.

An awareness update is ``varUint(n)`` then n times ``varUint(clientID) varUint(clock)
varString(json state)``; the state ``null`` removes a client. Every stock client runs
``JSON.parse`` on every state it receives, in one loop over the whole update: one state it cannot
parse throws, and every later entry of that message (of a newcomer's greeting: everyone's
presence) is lost with it. So the server never relays a state as it came: :func:`stamp` parses it
as JavaScript would accept it (:func:`parse_state`), sets ``principal``, and writes it out again
as JSON that ``JSON.parse`` reads to the same value.

Where Python's ``json`` and JavaScript's ``JSON.parse`` disagree, and what we do:

- ``NaN``, ``Infinity``, ``-Infinity``: Python accepts them, JavaScript throws. Refused.
- Numbers beyond float64 (``1e400``, an integer of 400 digits): Python keeps ``inf`` or the exact
  integer, JavaScript reads ``Infinity`` (which ``JSON.stringify`` writes as ``null``). Refused:
  every number must be finite as a float64. Integers beyond 2**53 are kept as written; JavaScript
  rounds them exactly as it would have rounded the client's own text.
- Lone surrogates (``"\\ud800"``): legal in both, but a Python ``str`` holding one cannot be
  encoded as UTF-8; such a state is written with ``\\u`` escapes instead.
- Duplicate keys: both keep the last one.
- Deep nesting: Python raises ``RecursionError`` past ~1000 levels, stock clients compare states
  with a recursive ``equalityDeep``. Refused past :data:`MAX_STATE_DEPTH` levels.
- Client ids and clocks: lib0 reads varints as JavaScript numbers, so they must be safe integers.

A state must be a JSON object (or ``null``: a removal). y-protocols would store any JSON value,
but the server stamps ``principal`` into every state so that what others see cannot be forged or
hidden, and a number or a string has nowhere to carry it; no Yjs binding sends anything else.

Bounds (:class:`AwarenessLimits`) and what happens at each, for one document:

- a state over ``max_state_bytes`` (UTF-8, as received): :class:`StateTooLarge`, its connection
  is closed with 4413 (a message over a limit);
- a state that is not such JSON: :class:`ProtocolError`, its connection is closed with 4400;
- a connection announcing more than ``max_ids_per_connection`` client ids: 4400 (a stock
  provider announces one id per connection; enforced by the room, which knows connections);
- ``max_clients`` live client ids, or ``max_total_bytes`` of live states, reached: a *new* state
  that would pass either is dropped and counted (``on_refused``); clients already present still
  update (within ``max_total_bytes``), and removals are always taken. So the greeting every
  newcomer gets holds at most ``max_total_bytes`` of states.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .lib0_values import json_depth
from .protocol import Decoder, ProtocolError, write_var_string, write_var_uint

__all__ = [
    "MAX_SAFE_INTEGER",
    "MAX_STATE_DEPTH",
    "AwarenessEntry",
    "AwarenessLimits",
    "AwarenessStates",
    "StateTooLarge",
    "decode_awareness",
    "dump_state",
    "encode_awareness_update",
    "parse_state",
    "stamp",
    "state_size",
]

NULL_STATE = "null"

# JavaScript's Number.MAX_SAFE_INTEGER: lib0 decodes varints as JavaScript numbers.
MAX_SAFE_INTEGER = 2**53 - 1
# The server adds one to a departed client's clock (AwarenessStates.remove), so a clock must
# leave room for that.
MAX_CLOCK = MAX_SAFE_INTEGER - 1

# Containers nested in one state, the state object itself included. A cursor of y-prosemirror
# (relative positions) is 4 levels deep; tldraw's presence about the same.
MAX_STATE_DEPTH = 32

KiB = 1024
DEFAULT_MAX_STATE_BYTES = 64 * KiB


@dataclass(frozen=True, slots=True)
class AwarenessLimits:
    """The presence bounds of one document (see the module docstring for each outcome)."""

    max_state_bytes: int = DEFAULT_MAX_STATE_BYTES  # a cursor, a name and a colour take ~200 bytes
    max_clients: int = 2000  # live client ids: a canvas of 50+ people, a few tabs each
    max_ids_per_connection: int = 16  # a tab is one id
    max_total_bytes: int = 4 * 1024 * KiB  # live states together: the size of a greeting


class StateTooLarge(ProtocolError):
    """An awareness state over ``max_state_bytes``: close 4413, not 4400."""


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: str  # JSON text; "null" means the client is gone

    @property
    def removed(self) -> bool:
        return self.state == NULL_STATE


def decode_awareness(update: bytes) -> list[AwarenessEntry]:
    """Decode an awareness update strictly (the states stay unparsed: see :func:`stamp`).

    Raises:
        ProtocolError: it does not decode, or a client id or clock is not a safe integer.
    """
    dec = Decoder(update)
    count = dec.read_var_uint()
    if count > len(update):  # each entry takes at least 3 bytes: reject absurd counts early
        raise ProtocolError("awareness update announces more entries than it holds")
    entries = []
    for _ in range(count):
        client_id, clock = dec.read_var_uint(), dec.read_var_uint()
        if client_id > MAX_SAFE_INTEGER or clock > MAX_CLOCK:
            raise ProtocolError("awareness client id or clock beyond JavaScript's safe integers")
        entries.append(AwarenessEntry(client_id, clock, dec.read_var_string()))
    dec.expect_end()
    return entries


def encode_awareness_update(entries: list[AwarenessEntry]) -> bytes:
    parts = [write_var_uint(len(entries))]
    for e in entries:
        parts.append(write_var_uint(e.client_id))
        parts.append(write_var_uint(e.clock))
        parts.append(write_var_string(e.state))
    return b"".join(parts)


# -- states as JavaScript reads them ------------------------------------------------------------


def state_size(text: str) -> int:
    """The UTF-8 length of a state (without encoding it when it is ASCII, the usual case)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _refuse_constant(name: str) -> Any:
    raise ProtocolError(f"awareness state holds {name}, which JSON.parse rejects")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ProtocolError(f"awareness state holds {text[:40]}, beyond a float64")
    return value


def _finite_int(text: str) -> int:
    # The largest float64 has 309 digits; a longer integer (JSON allows no leading zeros) is
    # beyond it, and would also run into Python's limit on int() digits.
    too_long = len(text.lstrip("-")) > 309
    try:
        if too_long:
            raise OverflowError
        value = int(text)
        float(value)
    except OverflowError:
        raise ProtocolError(f"awareness state holds {text[:40]}…, beyond a float64") from None
    return value


def parse_state(text: str, *, max_bytes: int = DEFAULT_MAX_STATE_BYTES) -> dict | None:
    """Parse an awareness state as a stock client's ``JSON.parse`` would read it.

    Returns:
        The state object, or ``None`` for a removal (JSON ``null``).

    Raises:
        StateTooLarge: ``text`` is over ``max_bytes`` (UTF-8).
        ProtocolError: it is not JSON, holds a number JavaScript cannot represent (``NaN``,
            ``Infinity``, ``1e400``), nests deeper than :data:`MAX_STATE_DEPTH`, or is
            neither an object nor ``null``.

    >>> parse_state('{"name": "ada", "cursor": [1, 2.5]}')
    {'name': 'ada', 'cursor': [1, 2.5]}
    """
    if state_size(text) > max_bytes:
        raise StateTooLarge(f"awareness state over {max_bytes} bytes")
    try:
        state = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_finite_int,
        )
    except RecursionError:
        raise ProtocolError(f"awareness state nested deeper than {MAX_STATE_DEPTH}") from None
    except ProtocolError:
        raise
    except ValueError as exc:  # JSONDecodeError, or int() past Python's digit limit
        raise ProtocolError("awareness state is not JSON") from exc
    if state is None:
        return None
    if not isinstance(state, dict):
        raise ProtocolError(f"awareness state is a JSON {type(state).__name__}, not an object")
    if json_depth(state, MAX_STATE_DEPTH) > MAX_STATE_DEPTH:
        raise ProtocolError(f"awareness state nested deeper than {MAX_STATE_DEPTH}")
    return state


def dump_state(state: dict) -> str:
    """JSON text of a parsed state that ``JSON.parse`` reads to the same value.

    Non-ASCII characters are written as they are (compact), unless the state holds a lone
    surrogate, which UTF-8 cannot carry: then everything non-ASCII is ``\\u``-escaped.
    """
    text = json.dumps(state, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(state, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text


def stamp(
    entry: AwarenessEntry, principal: str, *, max_bytes: int = DEFAULT_MAX_STATE_BYTES
) -> AwarenessEntry:
    """``entry`` as the server relays it: its state parsed strictly, ``principal`` set (whatever
    the client put there), written out again; a ``null`` state, however spelt, as a removal.

    Raises:
        StateTooLarge, ProtocolError: as :func:`parse_state`.
    """
    if entry.removed:
        return entry
    state = parse_state(entry.state, max_bytes=max_bytes)
    if state is None:
        return AwarenessEntry(entry.client_id, entry.clock, NULL_STATE)
    state["principal"] = principal
    return AwarenessEntry(entry.client_id, entry.clock, dump_state(state))


# -- the states of one document ------------------------------------------------------------------

# Why a new state was dropped: the document has max_clients live ids, or max_total_bytes of states.
REFUSED_CLIENTS = "clients"
REFUSED_BYTES = "bytes"


class AwarenessStates:
    """The latest state of every client of one document, with y-protocols' clock rules and the
    bounds of :class:`AwarenessLimits` (the room enforces the per-state and per-connection ones;
    this class the per-document ones, in :meth:`apply`)."""

    __slots__ = (
        "_gone",
        "_live",
        "_live_bytes",
        "_states",
        "limits",
        "max_gone",
        "on_refused",
        "refused",
    )

    def __init__(
        self,
        limits: AwarenessLimits | None = None,
        *,
        max_gone: int = 4096,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.limits = limits if limits is not None else AwarenessLimits()
        self._states: dict[int, AwarenessEntry] = {}
        # Removed clients keep their clock (as a "null" entry) so that a delayed older update
        # from them is recognised as stale. Every browser tab is a new client id, so a busy
        # document would collect them forever: only the last ``max_gone`` are remembered.
        self._gone: deque[int] = deque()
        self.max_gone = max_gone
        self._live = 0  # live (non-null) states
        self._live_bytes = 0  # their UTF-8 size together
        self.on_refused = on_refused  # called with REFUSED_CLIENTS or REFUSED_BYTES per entry
        self.refused = 0  # entries dropped at the bounds, since this document was loaded

    def accepts(self, e: AwarenessEntry) -> bool:
        """Whether ``e`` is newer than what we hold (y-protocols' rule)."""
        current = self._states.get(e.client_id)
        return (
            current is None
            or current.clock < e.clock
            or (current.clock == e.clock and e.removed and not current.removed)
        )

    def apply(self, entries: list[AwarenessEntry]) -> list[AwarenessEntry]:
        """Apply entries (already stamped); return those that changed something (to relay).

        Entries that are stale are skipped; new states past the document's bounds are dropped
        and counted in :attr:`refused` (and reported to ``on_refused``).
        """
        accepted = []
        for e in entries:
            if not self.accepts(e):
                continue
            current = self._states.get(e.client_id)
            was_live = current is not None and not current.removed
            old_size = state_size(current.state) if was_live else 0
            new_size = 0 if e.removed else state_size(e.state)
            if not e.removed:
                why = None
                if not was_live and self._live >= self.limits.max_clients:
                    why = REFUSED_CLIENTS
                elif self._live_bytes - old_size + new_size > self.limits.max_total_bytes:
                    why = REFUSED_BYTES
                if why is not None:
                    self.refused += 1
                    if self.on_refused is not None:
                        self.on_refused(why)
                    continue
            self._states[e.client_id] = e
            self._live += (not e.removed) - was_live
            self._live_bytes += new_size - old_size
            accepted.append(e)
            if e.removed:
                self._forget_later(e.client_id)
        return accepted

    def remove(self, client_ids: set[int]) -> list[AwarenessEntry]:
        """Mark clients gone (their connection closed); return the removal entries to relay."""
        removed = []
        for cid in client_ids:
            current = self._states.get(cid)
            if current is not None and not current.removed:
                entry = AwarenessEntry(cid, current.clock + 1, NULL_STATE)
                self._states[cid] = entry
                self._live -= 1
                self._live_bytes -= state_size(current.state)
                removed.append(entry)
                self._forget_later(cid)
        return removed

    def _forget_later(self, client_id: int) -> None:
        self._gone.append(client_id)
        while len(self._gone) > self.max_gone:
            old = self._gone.popleft()
            entry = self._states.get(old)
            if entry is not None and entry.removed:
                del self._states[old]

    def get(self, client_id: int) -> AwarenessEntry | None:
        """What we hold for ``client_id`` (a ``null`` entry for a departed client we remember)."""
        return self._states.get(client_id)

    def live(self) -> list[AwarenessEntry]:
        return [e for e in self._states.values() if not e.removed]

    @property
    def live_bytes(self) -> int:
        """The UTF-8 size of the live states together (what a greeting carries)."""
        return self._live_bytes

    def __len__(self) -> int:
        return self._live
