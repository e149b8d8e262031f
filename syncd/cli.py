"""``syncd serve`` and ``syncd token`` (DESIGN.md §1.1, §1.9 for ``--redis-url``)."""

from __future__ import annotations

import argparse
import logging
import sys

from .settings import Settings
from .tokens import WeakSecret

__all__ = ["ClusterMisconfigured", "check_cluster", "main"]

# What redis-py's ``from_url`` accepts; anything else is refused before the daemon starts.
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class ClusterMisconfigured(ValueError):
    """``--redis-url`` asks for a node of a cluster, and the rest of the settings cannot be one."""


def check_cluster(settings: Settings) -> None:
    """Refuse a Redis URL that cannot work, before anything starts (DESIGN.md §1.9).

    Redis carries only speed; the truth every node reads back after a missed message is the
    database. A SQLite file belongs to one node, so nodes on SQLite would each have their own
    truth and diverge for good: with a Redis URL the database must be Postgres.

    Raises:
        ClusterMisconfigured: SQLite (the default, or a ``sqlite:`` URL) with a Redis URL, or a
            Redis URL that is not ``redis://``, ``rediss://`` or ``unix://``.
    """
    if not settings.redis_url:
        return
    if not settings.redis_url.startswith(_REDIS_SCHEMES):
        # Not echoed: a Redis URL may carry a password.
        raise ClusterMisconfigured(
            "--redis-url (SYNCD_REDIS_URL) is not a Redis URL: use redis://HOST:PORT/DB "
            "(or rediss://, unix://)"
        )
    if settings.effective_database_url.startswith("sqlite"):
        raise ClusterMisconfigured(
            "--redis-url (SYNCD_REDIS_URL) needs a database shared by every node, and SQLite "
            "is one node's file: add --database-url postgresql://…"
        )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="syncd", description="Offline-first sync daemon")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the daemon")
    serve.add_argument("--host", help="address to listen on (SYNCD_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (SYNCD_PORT, default 8787)")
    serve.add_argument(
        "--database-url",
        help="postgresql://… or sqlite:///… (SYNCD_DATABASE_URL; default: SQLite in the data dir)",
    )
    serve.add_argument("--data-dir", help="data directory (SYNCD_DATA_DIR, default ./.syncd)")
    serve.add_argument("--log-level", help="debug, info, warning (SYNCD_LOG_LEVEL)")
    serve.add_argument(
        "--dev-login",
        action="store_true",
        default=None,
        help="development only: POST /v1/dev/login mints a token for any name (SYNCD_DEV_LOGIN)",
    )
    serve.add_argument(
        "--redis-url",
        help="redis://HOST:PORT/DB: run as one node of a cluster, Redis carrying updates and "
        "presence between nodes (SYNCD_REDIS_URL; needs a postgresql:// database)",
    )

    token = sub.add_parser("token", help="print a signed token for development and scripts")
    token.add_argument("--sub", required=True, help="principal id")
    token.add_argument("--tenant", default="default")
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds until it expires")
    token.add_argument("--role", choices=["user", "service", "admin"], default="user")
    token.add_argument(
        "--purpose", help="what a service may use the data for, e.g. analytics (docs/privacy.md)"
    )
    token.add_argument("--data-dir", help="data directory holding the generated secret")

    from . import keys_cli  # ``syncd keys …``: encryption at rest (docs/privacy.md)

    keys_cli.add_parser(sub)
    return p


def _refuse(command: str, problem: Exception) -> int:
    """Configuration errors end the command with a one-line reason, not a traceback."""
    print(f"syncd {command}: {problem}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        try:
            settings = Settings.from_env(
                host=args.host,
                port=args.port,
                database_url=args.database_url,
                data_dir=args.data_dir,
                log_level=args.log_level,
                dev_login=args.dev_login,
                redis_url=args.redis_url,
            )
            check_cluster(settings)
            from . import keys_cli

            keys_cli.preflight(settings)  # a bad master key file, or not the one in use
        except ValueError as exc:  # a weak SYNCD_SECRET, a bad number, Redis without Postgres
            return _refuse("serve", exc)
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        from .server import run

        try:
            run(settings)
        except WeakSecret as exc:  # the secret stored in the data dir is too short
            return _refuse("serve", exc)
        return 0
    if args.command == "token":
        from .daemon import Daemon

        try:
            settings = Settings.from_env(data_dir=args.data_dir)
            logging.basicConfig(level="WARNING", format="%(levelname)s: %(message)s")
            keys = Daemon._token_keys(settings)
            print(
                keys.mint(
                    args.sub, tenant=args.tenant, role=args.role, ttl=args.ttl,
                    purpose=args.purpose,
                )
            )
        except ValueError as exc:
            return _refuse("token", exc)
        return 0
    if args.command == "keys":
        from . import keys_cli

        return keys_cli.run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
