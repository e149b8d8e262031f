"""syncd/token_expiry.py: every session is told once, at or within a second after its token's
``exp`` and never before; a session that ended is not; all of them from one timer. (The 4401
close it leads to: tests/test_access.py, tests/test_sync_socket.py, "token expired".)"""

from __future__ import annotations

import asyncio
import time

import pytest

from syncd.token_expiry import TokenExpiry

pytestmark = pytest.mark.anyio

WAIT = 10.0


class Told:
    """Which sessions were told, when, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.at: dict[str, float] = {}
        self._changed = asyncio.Event()

    def record(self, name: str) -> None:
        self.names.append(name)
        self.at[name] = time.time()
        self._changed.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.names) < count:
                self._changed.clear()
                await self._changed.wait()


class Session:
    def __init__(self, name: str, told: Told) -> None:
        self.name = name
        self.told = told

    def token_expired(self) -> None:
        self.told.record(self.name)


async def test_sessions_are_told_at_their_expiry_in_order_and_never_before():
    expiry = TokenExpiry()
    told = Told()
    now = time.time()
    later, soon, past = now + 1.5, now + 0.2, now - 5
    expiry.add(Session("later", told), later)
    expiry.add(Session("soon", told), soon)  # earlier than the armed timer: re-armed for it
    expiry.add(Session("past", told), past)  # expired already: told at once
    await told.until(3)
    assert told.names == ["past", "soon", "later"]
    at = told.at
    assert soon <= at["soon"] < soon + 1.5 and later <= at["later"] < later + 1.5
    assert len(expiry) == 0 and not expiry._due and expiry._timer is None


async def test_an_ended_session_is_not_told_and_one_timer_serves_all():
    expiry = TokenExpiry()
    told = Told()
    loop = asyncio.get_running_loop()
    timers_before = len(loop._scheduled)  # type: ignore[attr-defined]
    exp = time.time() + 0.5
    sessions = [Session(f"s{i}", told) for i in range(1000)]
    for i, session in enumerate(sessions):
        expiry.add(session, exp + (i % 3) * 0.001)  # the same second: one bucket
    assert len(loop._scheduled) == timers_before + 1  # type: ignore[attr-defined]
    assert len(expiry) == 1000 and len(expiry._due) <= 2
    for session in sessions[:999]:
        expiry.discard(session, exp)
    expiry.discard(Session("never added", told), exp)  # a no-op
    await told.until(1)
    await asyncio.sleep(0.2)
    assert told.names == ["s999"]


async def test_sessions_ending_or_failing_while_told_leave_the_others_told():
    expiry = TokenExpiry()
    told = Told()
    exp = time.time()

    class Failing(Session):
        def token_expired(self) -> None:
            super().token_expired()
            raise RuntimeError("boom")

    class EndingAnother(Session):
        def token_expired(self) -> None:
            super().token_expired()
            expiry.discard(last, exp)  # its bucket is already out: still told

    last = Session("last", told)
    expiry.add(Failing("failing", told), exp)
    expiry.add(EndingAnother("ending", told), exp)
    expiry.add(last, exp)
    await told.until(3)
    assert told.names == ["failing", "ending", "last"]
