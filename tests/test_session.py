"""The seams both sockets share (issue 9 §1): one admission path with one typed refusal, the
document session's actions, and one table per transport from refusal reasons to what clients
are told. Over a real daemon (its store, rooms and group commit, on SQLite and Postgres) without
a server: the session's member is a recording one, the protocol a room talks to.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import anyio
import pycrdt
import pytest

from crdt.awareness import AwarenessEntry, encode_awareness_update
from crdt.protocol import (
    AwarenessMessage,
    ProtocolError,
    QueryAwarenessMessage,
    SyncMessage,
    SyncStep,
    decode_message,
)
from storage import DocKey
from syncd.access import DocRole, Grant, Mode, Refusal, RefusalReason, validate_access
from syncd.daemon import Daemon
from syncd.http_api import http_error
from syncd.peer import CloseCode, PeerState
from syncd.session import (
    CLOSE_CODES,
    Ack,
    Admission,
    DocumentSession,
    Echo,
    Leave,
    Reply,
    admit,
)
from syncd.tokens import Identity, Role
from tests.support.servers import SECRET

pytestmark = pytest.mark.anyio

WAIT = 10.0


class RecordingMember:
    """A :class:`~syncd.member.Member` that keeps what the room and the session send it."""

    def __init__(self, grant: Grant) -> None:
        self.id = "m1"
        self.identity: Identity = grant.identity
        self.readonly = grant.readonly
        self.awareness_ids: set[int] = set()
        self.state = PeerState.OPEN
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None

    @property
    def principal(self) -> str:
        return self.identity.sub

    def send(self, message: bytes) -> None:
        if self.state is PeerState.OPEN:
            self.sent.append(message)

    def close(self, code: int, reason: str = "") -> None:
        if self.state is PeerState.OPEN:
            self.state = PeerState.CLOSED
            self.closed = (code, reason)

    async def wait_closed(self) -> None:
        return None


@pytest.fixture
async def daemon(settings, database_url) -> AsyncIterator[Daemon]:
    d = Daemon(replace(settings, database_url=database_url, secret=SECRET))
    await d.start()
    try:
        yield d
    finally:
        await d.stop()


def token(daemon: Daemon, sub: str, **kw: object) -> str:
    return daemon.access.keys.mint(sub, **kw)  # type: ignore[arg-type]


async def share(daemon: Daemon, doc: str, grants: dict[str, str]) -> None:
    key = DocKey("default", doc)
    if await daemon.store.meta(key) is None:
        await daemon.store.create(key)
    daemon.access_changed(await daemon.store.set_access(key, "shared", grants))


def an_update(text: str) -> bytes:
    doc = pycrdt.Doc()
    doc.get("m", type=pycrdt.Map)["k"] = text
    return doc.get_update()


async def refused(daemon: Daemon, bearer: str | None, doc: str) -> Refusal:
    with pytest.raises(Refusal) as caught:
        await admit(daemon.access, daemon.rooms, bearer, doc)
    return caught.value


async def test_every_refusal_reason_has_a_close_code_and_an_http_answer():
    for reason in RefusalReason:
        assert CLOSE_CODES[reason] in CloseCode
        answer = http_error(Refusal(reason, "why"))
        assert answer.status in (400, 401, 403, 404, 503)
    # Not visible is not there: the HTTP API never tells that someone else's document exists.
    for reason in (RefusalReason.NO_ACCESS, RefusalReason.DELETED):
        answer = http_error(Refusal(reason, "why"))
        assert (answer.status, answer.error, answer.message) == (
            404,
            "not_found",
            "no such document",
        )


async def test_admit_refuses_with_one_typed_reason(daemon):
    alice = token(daemon, "alice")
    bad = await refused(daemon, alice, "no-slash")
    assert bad.reason is RefusalReason.BAD_DOCUMENT_ID
    assert bad.message == "document name 'no-slash' is not OWNER/NAME"
    assert (await refused(daemon, alice, "alice/bad!name")).reason is RefusalReason.BAD_DOCUMENT_ID
    assert (await refused(daemon, None, "alice/doc")).message == "missing token"
    assert (await refused(daemon, "x.y.z", "alice/doc")).reason is RefusalReason.UNAUTHENTICATED

    # Someone else's document: the same answer whether or not it exists, and nothing loaded.
    mine = await admit(daemon.access, daemon.rooms, alice, "alice/diary")
    assert mine.grant.role is DocRole.OWNER and not mine.grant.readonly
    for doc in ("alice/diary", "alice/never-made"):
        no = await refused(daemon, token(daemon, "bob"), doc)
        assert (no.reason, no.message) == (RefusalReason.NO_ACCESS, "no access to this document")
    assert [r.key.name for r in daemon.rooms.loaded()] == ["alice/diary"]
    daemon.rooms.release(mine.room)

    await daemon.rooms.delete(DocKey("default", "alice/diary"))
    gone = await refused(daemon, alice, "alice/diary")
    assert (gone.reason, gone.message) == (RefusalReason.DELETED, "document deleted")

    service = await admit(daemon.access, daemon.rooms, token(daemon, "svc", role="service"), "x/y")
    assert service.grant.role is DocRole.SERVICE and service.grant.may_create
    daemon.rooms.release(service.room)

    await daemon.rooms.close()  # shutting down: the database is not to be used any more
    later = await refused(daemon, alice, "alice/other")
    assert (later.reason, CLOSE_CODES[later.reason]) == (
        RefusalReason.UNAVAILABLE,
        CloseCode.TRY_AGAIN_LATER,
    )


async def session_of(
    daemon: Daemon, sub: str, doc: str, *, acknowledges: bool
) -> tuple[DocumentSession, RecordingMember, Admission]:
    admission = await admit(daemon.access, daemon.rooms, token(daemon, sub), doc)
    member = RecordingMember(admission.grant)
    session = DocumentSession(
        admission,
        member,
        daemon.rooms,
        daemon.metrics,
        daemon.token_expiry,
        acknowledges=acknowledges,
    )
    assert await session.start() is None
    return session, member, admission


async def test_an_editor_is_answered_and_acknowledged_where_the_transport_acknowledges(daemon):
    for acknowledges in (False, True):
        doc = f"alice/doc-{acknowledges}"
        session, member, admission = await session_of(
            daemon, "alice", doc, acknowledges=acknowledges
        )
        # Joining: our sync step 1 first, as the y-websocket server greets.
        greeting = decode_message(member.sent[0])
        assert isinstance(greeting, SyncMessage) and greeting.step is SyncStep.STEP1

        answer = await session.receive(SyncMessage(SyncStep.STEP1, b"\x00"))
        assert isinstance(answer, Reply)
        step2 = decode_message(answer.message)
        assert isinstance(step2, SyncMessage) and step2.step is SyncStep.STEP2

        written = await session.receive(SyncMessage(SyncStep.UPDATE, an_update("v")))
        if acknowledges:
            assert isinstance(written, Ack) and isinstance(written.outcome, asyncio.Future)
            with anyio.fail_after(WAIT):
                assert await written.outcome == 1
        else:
            assert written is None
            with anyio.fail_after(WAIT):
                await admission.room.drain()
        assert admission.room.seq == 1
        session.end()
        session.end()  # idempotent: the room was released once
        assert admission.room.peers == set()


async def test_a_viewers_writes_are_dropped_and_judged_only_where_acknowledged(daemon):
    owner, _, room_of_owner = await session_of(daemon, "alice", "alice/board", acknowledges=True)
    held = an_update("held")
    ack = await owner.receive(SyncMessage(SyncStep.UPDATE, held))
    assert isinstance(ack, Ack) and isinstance(ack.outcome, asyncio.Future)
    with anyio.fail_after(WAIT):
        await ack.outcome
    await share(daemon, "alice/board", {"bob": "viewer"})

    acked, _, _ = await session_of(daemon, "bob", "alice/board", acknowledges=True)
    assert await acked.receive(SyncMessage(SyncStep.STEP2, held)) == Ack(True)  # nothing new
    assert await acked.receive(SyncMessage(SyncStep.STEP2, an_update("new"))) == Ack(False)
    assert await acked.receive(SyncMessage(SyncStep.UPDATE, an_update("new"))) == Ack(False)
    with pytest.raises(ProtocolError):  # judged, so it must decode
        await acked.receive(SyncMessage(SyncStep.STEP2, b"\x05garbage"))

    dropped, _, _ = await session_of(daemon, "bob", "alice/board", acknowledges=False)
    # y-websocket: dropped unread, as its own server does.
    assert await dropped.receive(SyncMessage(SyncStep.STEP2, b"\x05garbage")) is None
    with anyio.fail_after(WAIT):
        await room_of_owner.room.drain()
    assert room_of_owner.room.seq == 1


async def test_presence_is_echoed_and_answered(daemon):
    session, member, _ = await session_of(daemon, "alice", "alice/presence", acknowledges=False)
    state = json.dumps({"user": "a"})
    update = encode_awareness_update([AwarenessEntry(7, 1, state)])
    echo = await session.receive(AwarenessMessage(update))
    assert isinstance(echo, Echo)  # what the room took, for transports that echo (Hocuspocus)
    assert member.awareness_ids == {7}
    answer = await session.receive(QueryAwarenessMessage())
    assert isinstance(answer, Reply) and answer.message == echo.message


async def test_a_room_closed_under_the_member_is_a_leave(daemon):
    session, member, _ = await session_of(daemon, "alice", "alice/short", acknowledges=True)
    await daemon.rooms.delete(DocKey("default", "alice/short"))
    assert member.closed == (CloseCode.NOT_FOUND, "document deleted")  # the room closed it
    left = await session.receive(SyncMessage(SyncStep.STEP1, b"\x00"))
    assert left == Leave(CloseCode.NOT_FOUND, "document deleted")
    session.end()


async def test_roles_and_modes_are_their_strings():
    mode, grants = validate_access("alice", {"mode": "shared", "grants": {"bob": "viewer"}})
    assert mode is Mode.SHARED and grants == {"bob": DocRole.VIEWER}
    assert json.dumps({"mode": mode, "grants": grants}) == (
        '{"mode": "shared", "grants": {"bob": "viewer"}}'
    )
    for body, message in (
        ({"mode": "public"}, "mode must be one of private, shared"),
        ({"mode": ["shared"]}, "mode must be one of private, shared"),
        (
            {"mode": "shared", "grants": {"bob": "owner"}},
            "role of bob must be one of viewer, editor",
        ),
    ):
        with pytest.raises(ValueError, match=message):
            validate_access("alice", body)
    assert Role("service").privileged and not Role.USER.privileged
    assert str(Role.ADMIN) == "admin"
