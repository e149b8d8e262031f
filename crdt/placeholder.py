"""Placeholders for withheld updates: the same struct ids, none of the content.

A feed subscriber bound to a purpose must not receive the updates of a principal who did not
consent to it, yet a Yjs replica that lacks them keeps every later struct of a consenting
writer that depends on one *pending* forever, and with it every later struct of that writer's
client (Yjs integrates each client's structs in clock order). A placeholder fills the gap:
one GC struct per client over the clock range the withheld update covered, and no delete set.
A replica that applies it has those clocks, knows nothing of what they held (content, parent,
map keys, deletions), and Yjs/yrs turn a later item whose neighbour or parent is a GC into a GC
too, so consenting edits that lean on withheld content are dropped while everything else of
theirs integrates. What it still tells: the writer's Yjs client id and how many structs it
wrote. Pure code.
"""

from __future__ import annotations

from .protocol import write_var_uint
from .update_format import decode_update

__all__ = ["placeholder"]

_GC = 0  # struct info byte of a GC (Yjs update v1)


def placeholder(update: bytes) -> bytes:
    """A Yjs v1 update of GC structs over every clock range ``update`` covers.

    Raises:
        ProtocolError: ``update`` is not a Yjs v1 update (the strict decoder's refusal).
    """
    ranges = decode_update(update).clients
    out = bytearray(write_var_uint(len(ranges)))
    # Clients in descending order, as Yjs writes them (readers accept any order).
    for client, (first, end) in sorted(ranges.items(), reverse=True):
        out += write_var_uint(1)
        out += write_var_uint(client)
        out += write_var_uint(first)
        out.append(_GC)
        out += write_var_uint(end - first)
    out += write_var_uint(0)  # no delete set: what the writer deleted is theirs too
    return bytes(out)
