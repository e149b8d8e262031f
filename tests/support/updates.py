"""Yjs updates made for tests."""

from __future__ import annotations

import pycrdt


def text_updates(n: int, client_id: int = 1) -> tuple[list[bytes], str]:
    """n updates, each appending one numbered line to a Y.Text; returns them and the text."""
    doc = pycrdt.Doc(client_id=client_id)
    text = doc.get("t", type=pycrdt.Text)
    out: list[bytes] = []
    doc.observe(lambda e: out.append(e.update))
    for i in range(n):
        text += f"{i};"
    return out, str(text)
