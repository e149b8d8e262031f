"""``syncd keys …``: the master key and the tenants' data keys (encryption at rest, §1.11)."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("keys", help="encryption at rest: rotate or shred keys")
    keys.add_subparsers(dest="keys_command", required=True)


def run(args: argparse.Namespace) -> int:
    return 2
