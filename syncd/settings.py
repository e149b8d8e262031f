"""All configuration, read in one place: command-line flags over ``SYNCD_*`` environment variables
over defaults. Nothing else in syncd reads the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .tokens import check_secret

__all__ = ["Settings"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8787
    database_url: str | None = None  # None: SQLite in data_dir
    data_dir: Path = Path(".syncd")
    secret: str | None = None
    public_key_file: Path | None = None  # PEM (Ed25519 or P-256): verify tokens issued elsewhere
    redis_url: str | None = None
    # Limits. A message above max_message_bytes closes its connection with 4413.
    max_message_bytes: int = 8 * MiB
    # A peer whose unsent messages exceed either bound is closed with 1013.
    send_queue_messages: int = 4096
    send_queue_bytes: int = 32 * MiB
    # Updates received by a room and not yet committed; above this, readers wait (backpressure).
    room_pending_bytes: int = 16 * MiB
    # Presence (awareness) of one document; what happens at each bound: docs/protocol.md.
    max_awareness_state_bytes: int = 64 * 1024  # one state; above it, close 4413
    max_awareness_clients: int = 2000  # live client ids; new ones past it are dropped
    max_awareness_ids_per_connection: int = 16  # client ids one connection may announce (4400)
    max_awareness_document_bytes: int = 4 * MiB  # live states together (a newcomer's greeting)
    # Per connection: a reader over either budget pauses until it is back within it
    # (syncd/rate.py); bursts of four seconds' worth pass unpaced.
    rate_messages_per_second: float = 500.0
    rate_bytes_per_second: float = 16 * MiB
    # HTTP request bodies. A JSON body above this is refused with 413 (a Content-Length above it
    # before anything is read); binary updates are bounded by max_message_bytes.
    max_json_body_bytes: int = 64 * 1024
    # Storage policy.
    commit_window_ms: float = 0.0
    compact_after_updates: int = 500
    compact_after_bytes: int = 4 * MiB
    log_retention_seconds: float | None = 30 * 24 * 3600
    # History (docs/history.md): a document that changed gets an automatic version this often;
    # the newest auto_versions_keep are kept; a deleted document stays restorable this long.
    auto_version_seconds: float = 1800.0
    auto_versions_keep: int = 50
    trash_seconds: float = 30 * 24 * 3600
    sqlite_synchronous: str = "FULL"
    # Database deadline: every store operation (taking a connection, its statements, the
    # commit) fails with "storage unavailable" after this long; /healthz's ping after at most 2 s.
    database_timeout_seconds: float = 5.0
    # Transport hardening (syncd/server_protocols.py, peer.py); at each bound: docs/protocol.md
    # "Limits".
    # A request head must be complete within request_timeout_seconds; an address with
    # max_pending_per_address incomplete requests has further connections closed at once (0: off).
    request_timeout_seconds: float = 10.0
    max_pending_per_address: int = 256
    max_unauthenticated_message_bytes: int = 256 * 1024  # WebSocket frames before authentication
    send_queue_total_bytes: int = 512 * MiB  # all send queues; past it the biggest closes 1013
    slow_reader_close_seconds: float = 2.0  # a 1013 close not taken in time: the TCP is dropped
    # Privacy (docs/privacy.md). With a master key file (32 random bytes, base64), everything
    # stored of a document is sealed with AES-256-GCM under a per-tenant data key.
    master_key_file: Path | None = None
    # How long a node uses the data keys it read before reading them again: a rotation or a
    # shred (``syncd keys``) reaches a running node within this (syncd/key_watch.py).
    key_check_seconds: float = 5.0
    audit_retention_seconds: float = 365 * 24 * 3600
    # Web Push (docs/push.md): the VAPID key (generated in data_dir when absent); endpoints must
    # be https:// on a public host unless they start with one of these comma-separated prefixes.
    vapid_private_key_file: Path | None = None
    push_allow_endpoints: str = ""
    push_max_subscriptions: int = 10  # per principal; the oldest goes when a new one comes
    # The VAPID JWT's contact (RFC 8292 §2.1: mailto: or https:), for push services' operators.
    vapid_subject: str = "mailto:webpush@syncd.invalid"
    # Lifecycle.
    idle_unload_seconds: float = 30.0
    shutdown_grace_seconds: float = 5.0
    log_level: str = "info"
    # Development only: POST /v1/dev/login mints a token for any typed name.
    dev_login: bool = False

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'syncd.db').resolve()}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``SYNCD_<FIELD>`` variables, then ``overrides`` that are not None."""
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"SYNCD_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("data_dir", "public_key_file", "master_key_file", "vapid_private_key_file"):
            if name in values:
                values[name] = Path(values[name])
        settings = replace(cls(), **values)
        if settings.secret is not None:
            check_secret(settings.secret, "SYNCD_SECRET")  # WeakSecret (a ValueError)
        return settings


def _parse(name: str, raw: str) -> Any:
    """A variable's text as its field's type (read from the annotation, so a new setting needs
    no entry here). A malformed number raises ``ValueError`` naming the variable."""
    kind = {f.name: str(f.type) for f in fields(Settings)}[name]
    if name == "log_retention_seconds" and raw.lower() in {"none", "forever"}:
        return None
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
    except ValueError:
        raise ValueError(f"SYNCD_{name.upper()}={raw!r} is not a number") from None
    if kind.startswith("bool"):
        return raw.lower() in {"1", "true", "yes", "on"}
    if kind.startswith("Path"):
        return Path(raw)
    return raw
