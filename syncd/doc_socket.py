"""``/v1/docs/{OWNER}/{NAME}``: one document per WebSocket, y-websocket compatible.

Refusals are sent *after* accepting the socket (permission-denied message, then a 44xx close),
because a browser cannot see why an HTTP upgrade failed. Each frame carries one y-protocols
message; a frame that does not decode costs its connection (4400), never the room.
"""

from __future__ import annotations

import asyncio
import itertools
import logging

from starlette.websockets import WebSocket

from crdt.protocol import (
    AwarenessMessage,
    ProtocolError,
    QueryAwarenessMessage,
    SyncMessage,
    SyncStep,
    decode_message,
    encode_auth_denied,
)
from crdt.updates import validate_update
from storage import DocumentDeleted, StoreUnavailable

from . import transport
from .access import Refusal
from .bearer import bearer_token
from .daemon import Daemon
from .origin import Origin
from .peer import CloseCode, Peer, PeerState
from .rate import ConnectionPace
from .room import RoomClosed
from .rooms import DocumentNotFound

__all__ = ["doc_socket"]

log = logging.getLogger("syncd.socket")

_peer_ids = itertools.count(1)


async def _refuse(ws: WebSocket, code: int, reason: str) -> None:
    try:
        await ws.send_bytes(encode_auth_denied(reason))
        await ws.close(code, reason[:120])
    except Exception as exc:  # the client left first: nothing to tell it
        log.debug("refusal not delivered: %r", exc)


async def doc_socket(ws: WebSocket) -> None:
    daemon: Daemon = ws.app.state.daemon
    await ws.accept()
    try:
        doc_id = daemon.access.parse_doc(ws.path_params["owner"], ws.path_params["name"])
        grant = await daemon.access.authorize(bearer_token(ws.headers, ws.query_params), doc_id)
        room = await daemon.rooms.acquire(grant.key, create=grant.may_create)
        try:
            grant = daemon.access.recheck(grant, room)
        except Refusal:
            daemon.rooms.release(room)
            raise
    except Refusal as refusal:
        await _refuse(ws, refusal.code, refusal.reason)
        return
    except DocumentDeleted:
        await _refuse(ws, CloseCode.NOT_FOUND, "document deleted")
        return
    except DocumentNotFound:
        await _refuse(ws, CloseCode.FORBIDDEN, "no access to this document")
        return
    except StoreUnavailable:
        await _refuse(ws, CloseCode.TRY_AGAIN_LATER, "storage unavailable, retry later")
        return
    transport.authenticated(ws)  # admitted: frames up to max_message_bytes from now on

    settings = daemon.settings
    metrics = daemon.metrics
    peer = Peer(
        f"p{next(_peer_ids)}",
        ws.send_bytes,
        ws.close,
        principal=grant.identity.sub,
        readonly=grant.readonly,
        max_messages=settings.send_queue_messages,
        max_bytes=settings.send_queue_bytes,
        abort=transport.aborter(ws),
        queues=daemon.send_queues,
    )
    peer.bind_handler(asyncio.current_task())
    peer.on_sent = daemon.count_sent
    daemon.connected(peer, grant)
    daemon.socket_opened(peer)
    try:
        await room.join(peer)
        await _serve(ws, daemon, room, peer)
    except RoomClosed as exc:  # before or while joining: the room closed or cannot be read
        log.info("doc %s: peer %s: %s", room.key, peer.id, exc)
        peer.close(exc.code, exc.reason)
    except asyncio.CancelledError:
        if peer.close_code is None:
            raise
        # We cancelled ourselves: the client would not take its close frame. Return quietly so
        # the server drops the connection.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    finally:
        room.leave(peer)
        daemon.disconnected(peer)
        daemon.socket_closed(peer)
        daemon.rooms.release(room)
        if peer.close_code is not None:
            metrics.closes.labels(str(peer.close_code)).inc()
            # Returning closes the transport: let the close frame with our code go out first.
            await peer.wait_closed()


async def _serve(ws: WebSocket, daemon: Daemon, room, peer: Peer) -> None:  # type: ignore[no-untyped-def]
    limit = daemon.settings.max_message_bytes
    metrics = daemon.metrics
    key = room.key
    pace = ConnectionPace(
        daemon.settings.rate_messages_per_second, daemon.settings.rate_bytes_per_second
    )
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect" or peer.state is not PeerState.OPEN:
            return
        data = message.get("bytes")
        if data is None:
            log.info("doc %s: peer %s sent a text frame; closing 4400", key, peer.id)
            peer.close(CloseCode.MALFORMED, "expected binary frames")
            return
        metrics.bytes_received.inc(len(data))
        if len(data) > limit:
            log.info("doc %s: peer %s sent %d bytes (limit %d); closing 4413",
                     key, peer.id, len(data), limit)
            peer.close(CloseCode.TOO_LARGE, f"message over {limit} bytes")
            return
        await pace.admit(len(data))
        try:
            msg = decode_message(data)
            if isinstance(msg, SyncMessage):
                if msg.step is SyncStep.STEP1:
                    peer.send(await room.sync_step2_for(msg.payload))
                elif peer.readonly:
                    # Viewers' edits are never applied, stored or forwarded.
                    metrics.updates_dropped.inc()
                else:
                    validate_update(msg.payload)
                    metrics.updates_received.inc()
                    await room.ingest(Origin.client(peer), msg.payload)
            elif isinstance(msg, AwarenessMessage):
                room.awareness_from(peer, msg.update)
            elif isinstance(msg, QueryAwarenessMessage):
                reply = room.awareness_message()
                if reply is not None:
                    peer.send(reply)
            # An auth message from a client has no meaning here; y-websocket never sends one.
        except ProtocolError as exc:
            log.info("doc %s: peer %s sent malformed data (%s); closing 4400", key, peer.id, exc)
            peer.close(CloseCode.MALFORMED, f"malformed message: {exc}")
            return
        except RoomClosed as exc:  # the room closed under us (unloaded, deleted, shutdown)
            log.info("doc %s: peer %s: %s", key, peer.id, exc)
            peer.close(exc.code, exc.reason)
            return
        if peer.close_code is not None:
            return
