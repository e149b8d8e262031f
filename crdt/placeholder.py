"""Placeholders for withheld updates: the same struct ids, none of the content.

A feed subscriber bound to a purpose must not receive the updates of a principal who did not
consent to it, yet a Yjs replica that lacks them keeps every later struct of a consenting
writer that depends on one *pending* forever, and with it every later struct of that writer's
client (Yjs integrates each client's structs in clock order). A placeholder fills the gap:
one GC struct per client over the clock range the withheld update covered, and its delete set.
A replica that applies it has those clocks and knows nothing of what they held (content,
parent, map keys), and Yjs/yrs turn a later item whose neighbour or parent is a GC into a GC
too, so consenting edits that lean on withheld content are dropped while everything else of
theirs integrates.

The delete set is kept: it names only struct ids, and without it a withheld writer's
deletions (overwriting someone's map value deletes the old one) would surface later inside the
next consenting update whose delete set is the whole document's, as Yjs sync messages carry
it, and be decoded as that writer's change. What a placeholder still tells: the writer's Yjs
client id, how many structs it wrote and which struct ids it deleted. Pure code.
"""

from __future__ import annotations

from .protocol import write_var_uint
from .update_format import decode_update

__all__ = ["placeholder"]

_GC = 0  # struct info byte of a GC (Yjs update v1)


def placeholder(update: bytes) -> bytes:
    """A Yjs v1 update of GC structs over every clock range ``update`` covers, with its
    delete set.

    Raises:
        ProtocolError: ``update`` is not a Yjs v1 update (the strict decoder's refusal).
    """
    shape = decode_update(update)
    ranges = shape.clients
    out = bytearray(write_var_uint(len(ranges)))
    # Clients in descending order, as Yjs writes them (readers accept any order).
    for client, (first, end) in sorted(ranges.items(), reverse=True):
        out += write_var_uint(1)
        out += write_var_uint(client)
        out += write_var_uint(first)
        out.append(_GC)
        out += write_var_uint(end - first)
    deleted = shape.delete_set
    out += write_var_uint(len(deleted))
    for client, spans in sorted(deleted.items()):
        out += write_var_uint(client)
        out += write_var_uint(len(spans))
        for clock, length in spans:
            out += write_var_uint(clock)
            out += write_var_uint(length)
    return bytes(out)
