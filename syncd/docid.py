"""Document ids (``OWNER/NAME``) and principal names, as DESIGN.md §1.3 defines them."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DocId", "InvalidDocId", "is_principal"]

_PRINCIPAL = re.compile(r"[A-Za-z0-9._@+-]{1,64}")
_NAME = re.compile(r"[A-Za-z0-9._~-]{1,128}")


class InvalidDocId(ValueError):
    pass


def is_principal(value: str) -> bool:
    return _PRINCIPAL.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class DocId:
    owner: str
    name: str

    @classmethod
    def parse(cls, value: str) -> DocId:
        owner, sep, name = value.partition("/")
        if not sep:
            # Bounded: the value may be a whole frame's worth of a client's bytes.
            raise InvalidDocId(f"document name {value[:200]!r} is not OWNER/NAME")
        return cls.of(owner, name)

    @classmethod
    def of(cls, owner: str, name: str) -> DocId:
        if not is_principal(owner):
            raise InvalidDocId(f"invalid owner {owner!r}: expected [A-Za-z0-9._@+-]{{1,64}}")
        if not _NAME.fullmatch(name):
            raise InvalidDocId(f"invalid document name {name!r}: expected [A-Za-z0-9._~-]{{1,128}}")
        return cls(owner, name)

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"
