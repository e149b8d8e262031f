"""Calling into yrs (pycrdt's Rust core) on data we did not make, without dying of it.

yrs reports some bad input as ``ValueError`` or ``RuntimeError``, and some by panicking: pyo3
turns a Rust panic into ``pyo3_runtime.PanicException``, which derives from ``BaseException``
so that ``except Exception`` does not catch it. A panic on one client's update must cost that
client its connection, not unwind through the room, the socket task or the event loop. Anything
that is not ``Exception`` or a panic (``KeyboardInterrupt``, ``SystemExit``, cancellation) is
never swallowed.

What yrs cannot survive at all (a stack overflow is a SIGSEGV, beyond any ``except``) is kept
away by the strict decoder in :mod:`crdt.update_format`, which runs before any of these calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pycrdt

__all__ = ["YrsFailure", "apply_update", "guarded"]

T = TypeVar("T")


class YrsFailure(Exception):
    """yrs refused or panicked on an input; the document it was applied to may be inconsistent."""


def _is_panic(exc: BaseException) -> bool:
    return type(exc).__name__ == "PanicException"


def guarded(call: Callable[..., T], *args: object, **kwargs: object) -> T:
    """``call(*args, **kwargs)``, with every failure of yrs raised as :class:`YrsFailure`."""
    try:
        return call(*args, **kwargs)
    except Exception as exc:
        raise YrsFailure(f"{type(exc).__name__}: {exc}") from exc
    except BaseException as exc:
        if not _is_panic(exc):
            raise
        raise YrsFailure(f"yrs panicked: {exc}") from exc


def apply_update(doc: pycrdt.Doc, update: bytes) -> None:
    """Apply an update; a failure raises :class:`YrsFailure` (and ``doc`` may then be damaged:
    rebuild it rather than go on with it)."""
    guarded(doc.apply_update, update)
