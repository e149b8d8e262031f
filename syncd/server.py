"""Running the app under uvicorn, with syncd's own graceful shutdown.

On SIGTERM/SIGINT uvicorn would close every WebSocket with 1012 before the application hears
of it. We first stop accepting, commit what is queued and close peers with 1001 (DESIGN.md
§1.4: going away), then let uvicorn finish.
"""

from __future__ import annotations

import gc
import logging
import re
import resource

import uvicorn

from . import server_protocols, websocket_protocol
from .app import create_app
from .daemon import Daemon
from .settings import Settings
from .socket_front import socket_front

__all__ = [
    "GC_THRESHOLDS",
    "DaemonServer",
    "raise_open_files_limit",
    "run",
    "tune_garbage_collector",
    "uvicorn_config",
]

# The cyclic collector's generation thresholds (CPython's default: 700, 10, 10).
GC_THRESHOLDS = (20_000, 50, 100)

log = logging.getLogger("syncd")


_TOKEN_PARAM = re.compile(r"(token=)[^&\s\"']+")


class RedactTokens(logging.Filter):
    """uvicorn logs a WebSocket's path with its query string, ``?token=JWT`` included (at debug
    on ``syncd.sockets``, websocket_protocol.SOCKET_LOG; ``access_log=False`` does not cover
    it). Bearer tokens must not end up in logs, so their values are replaced before the record
    is formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                _TOKEN_PARAM.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = _TOKEN_PARAM.sub(r"\1[redacted]", record.msg)
        return True


def redact_tokens_in_logs() -> None:
    for name in ("uvicorn.error", "uvicorn.access", websocket_protocol.SOCKET_LOG.name):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


class DaemonServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, daemon: Daemon) -> None:
        super().__init__(config)
        self.daemon = daemon

    async def shutdown(self, sockets=None) -> None:  # type: ignore[no-untyped-def]
        for server in self.servers:
            server.close()
        try:
            await self.daemon.rooms.close()
            await self.daemon.close_sockets(1001, "server shutting down")
        except Exception:
            log.exception("graceful close of documents failed")
        await super().shutdown(sockets)


def uvicorn_config(settings: Settings, app: object) -> uvicorn.Config:
    # syncd's own protocols (syncd/server_protocols.py): bounded request heads, per-address pending
    # connections, 4413 from a frame's header, closes that cannot hang.
    http, ws = server_protocols.protocols(settings)
    # A line per socket opened at debug only (an access log; see websocket_protocol.SOCKET_LOG).
    websocket_protocol.SOCKET_LOG.setLevel(
        logging.DEBUG if settings.log_level.lower() in ("debug", "trace") else logging.WARNING
    )
    return uvicorn.Config(
        # WebSockets reach their endpoint without Starlette's layers suspended under every idle
        # socket (syncd/socket_front.py).
        socket_front(app),  # type: ignore[arg-type]
        host=settings.host,
        port=settings.port,
        http=http,
        ws=ws,
        # The frame parser refuses with 4413 at this size, from the frame header; it is lowered
        # to max_unauthenticated_message_bytes until the socket authenticates.
        ws_max_size=settings.max_message_bytes,
        ws_per_message_deflate=False,  # zlib contexts cost ~100 KiB per connection
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to the hard limit; return the new limit.

    Every connection costs a file descriptor, and the common default soft limit (1,024) is
    reached by a thousand clients long before memory or CPU is.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit still stops at the kernel's nr_open (1,048,576 by default).
    target = hard if hard != resource.RLIM_INFINITY else 1024 * 1024
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open files limit from %d to %d: %s", soft, target, exc)
        return soft
    return target


def tune_garbage_collector() -> None:
    """Make the cyclic garbage collector cheap for a server that holds many long-lived objects.

    With CPython's defaults a young collection runs every 700 allocations of containers, and an
    older one every 7,000: each opened WebSocket allocates a few hundred (protocol, task,
    coroutine frames, session, headers), and the older collections walk everything that
    survived, i.e. every room and connection held. Measured with
    ``benchmarks/connection_cost.py`` (2,000 connections): server CPU per connection opened
    1.1 to 1.65 ms with the defaults, 0.8 to 1.1 ms with this. Everything imported and built at
    start is frozen out of collection (it lives as long as the process), and the thresholds are
    raised; young reference cycles are still collected at every young collection.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(settings: Settings) -> None:
    log.info("open files limit: %d", raise_open_files_limit())
    daemon = Daemon(settings)
    app = create_app(settings, daemon)
    server = DaemonServer(uvicorn_config(settings, app), daemon)
    redact_tokens_in_logs()  # after uvicorn configured its loggers
    tune_garbage_collector()  # after the start-up objects exist: they are frozen
    url = f"http://{settings.host}:{settings.port}"
    db = settings.database_url or f"embedded SQLite in {settings.data_dir.resolve()}"
    log.info("syncd on %s (database: %s)", url, db.split("@")[-1])
    print(
        f"syncd is serving {url}/ — documents at ws://{settings.host}:{settings.port}/v1/docs/"
        f"OWNER/NAME — database: {db.split('@')[-1]}",
        flush=True,
    )
    server.run()
