"""The Python SDK against a real daemon: many documents on one socket, offline, restarts."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap

import pycrdt
import pytest
from syncd_client import Client, DocumentState, FeedSubscriber, PermanentClose

from storage import DocKey
from tests.support.servers import SECRET, DaemonProcess
from tests.support.storegate import gated_commits
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio


def base(daemon) -> str:  # type: ignore[no-untyped-def]
    return f"ws://127.0.0.1:{daemon.port}"


async def test_documents_sync_over_one_socket(any_daemon):
    async with Client(base(any_daemon), any_daemon.token("alice")) as client:
        journal = client.document("alice/journal").journal()
        journal.init("Mine")
        entry = journal.create_entry("Monday", "train thoughts")
        canvas = client.document("alice/canvas").canvas(author="alice")
        canvas.add_card("values", "courage", 10, 20)
        await client.synced(timeout=20)
        assert all(d.unsynced == 0 for d in client.documents.values())
    # Another client (the per-document endpoint) sees exactly that.
    url = any_daemon.ws_url("alice/journal", any_daemon.token("alice"))
    async with YClient(url) as other:
        from crdt.schemas import Journal

        assert Journal(other.doc).entry(entry)["body"] == "train thoughts"


async def test_outbox_empties_only_after_the_server_acknowledges(daemon):
    async with Client(base(daemon), daemon.token("alice")) as client:
        doc = client.document("alice/acks")
        await doc.wait_saved(timeout=10)
        with gated_commits(daemon.daemon) as gate:
            doc.doc.get("m", type=pycrdt.Map)["k"] = "v"
            await gate.wait_entered()
            # The update reached the server, which has not stored it: still in the outbox.
            assert doc.unsynced == 1 and doc.state is DocumentState.SYNCING
            gate.open()
            await doc.wait_saved(timeout=10)
        assert doc.unsynced == 0
        loaded = await daemon.daemon.store.load(DocKey("default", "alice/acks"))
        assert loaded.seq >= 1


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from syncd_client import Client

    async def main(url, token, store, phase):
        client = Client(url, token, store=store, backoff=(0.05, 0.2))
        client.start()
        doc = client.document("alice/offline")
        text = doc.doc.get("t", type=__import__("pycrdt").Text)
        if phase == "edit":
            text += "typed offline; "          # the daemon is down: outbox only
            text += "and more; "
            assert doc.unsynced == 2, doc.unsynced
            await client.close()               # the process ends with the edits unsent
        else:
            assert str(text) == "typed offline; and more; ", str(text)
            await client.synced(timeout=30)    # daemon up again: edits stored, outbox empty
            assert doc.unsynced == 0
            await client.close()

    asyncio.run(main(*sys.argv[1:]))
    """
)


async def test_offline_edits_survive_a_restart_and_arrive(tmp_path):
    daemon = DaemonProcess(tmp_path / "data", None)
    from syncd.tokens import TokenKeys

    token = TokenKeys(secret=SECRET).mint("alice")
    url = f"ws://127.0.0.1:{daemon.port}"
    store = str(tmp_path / "client.db")

    def child(phase: str) -> None:
        subprocess.run(
            [sys.executable, "-c", CHILD, url, token, store, phase], check=True, timeout=60
        )

    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, child, "edit")  # nothing listens on the port yet
    daemon.start()
    try:
        await loop.run_in_executor(None, child, "sync")
        async with YClient(daemon.ws_url("alice/offline", token)) as check:
            assert str(check.doc.get("t", type=pycrdt.Text)) == "typed offline; and more; "
    finally:
        daemon.terminate()


async def test_reconnects_after_server_restart_and_stops_on_permanent_close(tmp_path):
    daemon = DaemonProcess(tmp_path / "data", None).start()
    from syncd.tokens import TokenKeys

    keys = TokenKeys(secret=SECRET)
    try:
        async with Client(
            f"ws://127.0.0.1:{daemon.port}", lambda: keys.mint("alice"), backoff=(0.05, 0.3)
        ) as client:
            doc = client.document("alice/r")
            await doc.wait_saved(timeout=10)
            daemon.terminate()
            await asyncio.wait_for(_until_offline(doc), 10)
            doc.doc.get("m", type=pycrdt.Map)["while_down"] = True
            daemon.start()
            await client.synced(timeout=30)
        # On /v1/sync a bad token refuses its document, not the socket.
        expired = Client(f"ws://127.0.0.1:{daemon.port}", keys.mint("alice", ttl=-1))
        async with expired:
            expired.document("alice/r")
            with pytest.raises(PermissionError, match="expired"):
                await expired.synced(timeout=10)
    finally:
        daemon.terminate()


async def test_stops_reconnecting_on_a_permanent_close(settings):
    from dataclasses import replace

    from tests.support.servers import start_daemon

    running = await start_daemon(replace(settings, max_message_bytes=4096))
    try:
        client = Client(base(running), running.token("alice"), backoff=(0.01, 0.02))
        async with client:
            doc = client.document("alice/big")
            await doc.wait_saved(timeout=10)
            doc.doc.get("t", type=pycrdt.Text).insert(0, "x" * 10_000)
            with pytest.raises(PermanentClose, match="4413"):
                await client.synced(timeout=10)
            assert client.closed_reason.startswith("4413")
            assert doc.unsynced == 1  # kept: nothing typed is lost, even when refused
    finally:
        await running.stop()


async def _until_offline(doc) -> None:  # type: ignore[no-untyped-def]
    await doc.wait_for(lambda: doc.state is DocumentState.OFFLINE)


async def test_refused_document_reports_permission_error(daemon):
    async with Client(base(daemon), daemon.token("bob")) as client:
        client.document("alice/private")
        with pytest.raises(PermissionError):
            await client.synced(timeout=10)


async def test_feed_subscriber_resumes_from_its_cursor(daemon, tmp_path):
    store = tmp_path / "svc.db"
    svc = daemon.token("insights", role="service")
    async with Client(base(daemon), daemon.token("alice")) as client:
        doc = client.document("alice/feed")
        await doc.wait_saved(timeout=10)
        m = doc.doc.get("m", type=pycrdt.Map)
        for i in range(5):  # five separately stored updates
            m[f"k{i}"] = i
            await client.synced(timeout=10)
    seen = []
    feed = FeedSubscriber(base(daemon), svc, store=store, prefix="alice/")
    async with asyncio.timeout(20), contextlib.aclosing(feed.events()) as events:
        async for event in events:
            seen.append((event["doc"], event["seq"]))
            if len(seen) == 3:
                break  # the third event is not yet marked processed
    feed.close()
    again = FeedSubscriber(base(daemon), svc, store=store, prefix="alice/")
    async with asyncio.timeout(20), contextlib.aclosing(again.events()) as events:
        async for event in events:
            seen.append((event["doc"], event["seq"]))
            if event["seq"] == 5:
                break
    again.close()
    assert seen[:3] == [("alice/feed", 1), ("alice/feed", 2), ("alice/feed", 3)]
    assert seen[3:] == [("alice/feed", 3), ("alice/feed", 4), ("alice/feed", 5)]
