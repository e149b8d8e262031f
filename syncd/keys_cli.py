"""``syncd keys …``: the master key and the tenants' data keys (encryption at rest, §1.11).

``rotate-master --new-key-file F`` re-wraps every data key (no document row changes; then
restart the daemons with ``F``), ``rotate --tenant T`` re-encrypts a tenant under a new data key
while daemons keep serving, ``shred --tenant T`` destroys a tenant's data keys, ``status`` lists
them with the updates sealed under each since it was made (the nonce budget). All take the
database like ``serve`` (``--database-url``/``--data-dir`` or their variables) and the current
master key from ``--master-key-file`` or ``SYNCD_MASTER_KEY_FILE``. See docs/privacy.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from storage.key_ring import KeyRing, MasterKeyError, read_master_key
from storage.sql import SqlStore
from storage.store import StoreUnavailable

from .settings import Settings

__all__ = ["add_parser", "key_ring", "preflight", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("keys", help="encryption at rest: rotate or shred keys")
    commands = keys.add_subparsers(dest="keys_command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help)
        p.add_argument("--database-url", help="as for serve (SYNCD_DATABASE_URL)")
        p.add_argument("--data-dir", help="as for serve (SYNCD_DATA_DIR)")
        p.add_argument("--master-key-file", help="the current master key (SYNCD_MASTER_KEY_FILE)")
        return p

    rewrap = command("rotate-master", "wrap every data key with a new master key")
    rewrap.add_argument("--new-key-file", required=True, type=Path, help="32 bytes, base64")
    rotate = command("rotate", "re-encrypt a tenant under a fresh data key")
    rotate.add_argument("--tenant", required=True)
    rotate.add_argument("--batch", type=int, default=500, help="rows per transaction")
    rotate.add_argument(
        "--settle-seconds",
        type=float,
        help="wait before the last pass, for running daemons to switch keys (default 11)",
    )
    command("status", "list the tenants' data keys and the updates sealed under each")
    shred = command("shred", "destroy a tenant's data keys: all its data becomes unreadable")
    shred.add_argument("--tenant", required=True)
    shred.add_argument(
        "--force", action="store_true", help="even if some of its rows are plaintext"
    )


def key_ring(settings: Settings) -> KeyRing | None:
    """The daemon's key ring: ``None`` without a master key (nothing is sealed).

    Raises:
        MasterKeyError: the key file is missing or malformed.
    """
    if settings.master_key_file is None:
        return None
    return KeyRing.from_file(settings.master_key_file, check_seconds=settings.key_check_seconds)


def preflight(settings: Settings) -> None:
    """Before ``serve``: refuse a bad master key file, one that is not the key that wrapped the
    database's data keys (an old key after ``rotate-master``), or no key for a database that
    holds sealed data, with a one-line reason (the daemon's own start checks the same, with a
    traceback).

    Raises:
        MasterKeyError: as :meth:`KeyRing.verify` and ``refuse_keyless_start``.
    """
    ring = key_ring(settings)
    try:
        asyncio.run(_verify(settings, ring))
    except StoreUnavailable:  # the database is away: the daemon's own start reports it
        return


async def _verify(settings: Settings, ring: KeyRing | None) -> None:
    store = _store(settings, ring)
    try:
        await store.open()  # verifies the key ring
    finally:
        await store.close()


def _store(settings: Settings, ring: KeyRing | None) -> SqlStore:
    return SqlStore(
        settings.effective_database_url,
        timeout_seconds=settings.database_timeout_seconds,
        key_ring=ring,
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(
            database_url=args.database_url,
            data_dir=args.data_dir,
            master_key_file=args.master_key_file,
        )
        ring = key_ring(settings)
        if ring is None:
            raise MasterKeyError(
                "no master key: pass --master-key-file or set SYNCD_MASTER_KEY_FILE"
            )
        return asyncio.run(_run(args, settings, ring))
    except (ValueError, RuntimeError) as exc:  # MasterKeyError, RekeyError, StoreUnavailable
        print(f"syncd keys {args.keys_command}: {exc}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, settings: Settings, ring: KeyRing) -> int:
    from storage import rekeying

    def say(line: str) -> None:
        print(line, flush=True)

    new_master = None
    if args.keys_command == "rotate-master":
        new_master = read_master_key(args.new_key_file)
        if new_master == read_master_key(settings.master_key_file):  # type: ignore[arg-type]
            raise MasterKeyError("the new key file holds the current master key")
    store = _store(settings, ring)
    await store.open()
    try:
        if new_master is not None:
            count = await rekeying.rewrap_master(store, new_master)
            say(f"re-wrapped {count} data keys; restart every daemon with {args.new_key_file}")
        elif args.keys_command == "rotate":
            done = await rekeying.rotate_tenant(
                store,
                args.tenant,
                batch=args.batch,
                settle_seconds=args.settle_seconds,
                report=say,
            )
            say(
                f"tenant {done.tenant!r}: {done.resealed} rows re-sealed under generation "
                f"{done.generation}"
            )
        elif args.keys_command == "status":
            say("tenant\tgeneration\tstate\tcreated\tupdates since (about its seals)")
            for k in await rekeying.key_status(store):
                made = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(k.created_at))
                state = k.state + (" (destroyed)" if k.destroyed and k.state != "shredded" else "")
                say(f"{k.tenant}\t{k.generation}\t{state}\t{made}\t{k.updates_since}")
        elif args.keys_command == "shred":
            count = await rekeying.shred_tenant(store, args.tenant, force=args.force)
            say(f"tenant {args.tenant!r}: {count} data keys destroyed; its data is unreadable")
    finally:
        await store.close()
    return 0
