"""Rollback and activity through the daemon (issue 11, acceptance 3), on SQLite and Postgres:
alice and bob edit one canvas; bob's edits in a window are undone (inserts, changes, deletes),
alice's before, during and after it are kept, and so are bob's outside it. The property over
random edit sequences is ``tests/test_history_edits.py``; this is the same over the wire, with
the window chosen by the stored (server) times."""

from __future__ import annotations

import httpx
import pytest

from storage import DocKey
from tests.support.history import CanvasWriter, iso, json_state
from tests.support.servers import RunningDaemon

pytestmark = pytest.mark.anyio


# A window's edge a little outside the stored times: a Unix time in a double holds about a
# quarter of a microsecond, so half a microsecond (the old margin) could round onto the wrong
# side through ISO 8601 and back. Edits posted one after the other are milliseconds apart.
EDGE = 1e-5


async def _at(daemon: RunningDaemon, doc: str, seq: int) -> float:
    entries = await daemon.daemon.history.entries(DocKey("default", doc), None, None)
    assert entries is not None
    return {s: at for s, _, at in entries}[seq]


async def test_rollback_undoes_bobs_window_and_keeps_everything_else(any_daemon: RunningDaemon):
    doc = "alice/group"
    async with httpx.AsyncClient(base_url=any_daemon.http) as http:
        alice = CanvasWriter(http, any_daemon, doc, "alice")
        await alice.edit(lambda c: c.init("Group"))
        await http.put(
            f"/v1/docs/{doc}/access",
            json={"mode": "shared", "grants": {"bob": "editor"}},
            headers=alice.auth,
        )
        bob = CanvasWriter(http, any_daemon, doc, "bob")
        a_card, _ = await alice.edit(lambda c: c.add_card("tarot", "alice-card", 10, 10))
        a_text, _ = await alice.edit(lambda c: c.add_text("alice's words", 0, 0))
        await bob.pull()
        b_early, _ = await bob.edit(lambda c: c.add_card("tarot", "bob-before", 1, 1))
        # The window: bob adds, moves alice's card, edits her text, deletes her other card.
        a_doomed, _ = await alice.edit(lambda c: c.add_card("tarot", "alice-doomed", 5, 5))
        await bob.pull()
        b_scribble, first = await bob.edit(lambda c: c.add_stroke(3, 3, [1, 1, 0.5, 2, 2, 0.5]))
        await bob.edit(lambda c: c.move(a_card, 999, 999))
        await bob.edit(lambda c: c.edit_text(a_text, 0, delete=7, insert="BOB"))
        await bob.edit(lambda c: c.delete(a_doomed))
        await alice.pull()
        a_during, _ = await alice.edit(lambda c: c.add_card("tarot", "alice-during", 20, 20))
        _, last = await bob.edit(lambda c: c.add_card("tarot", "bob-in-window", 2, 2))
        # After the window: alice edits her text (after bob's change) and bob adds a card.
        await alice.pull()
        await alice.edit(lambda c: c.edit_text(a_text, len("BOB words"), insert="!"))
        await bob.pull()
        b_late, _ = await bob.edit(lambda c: c.add_card("tarot", "bob-after", 4, 4))

        since, until = await _at(any_daemon, doc, first), await _at(any_daemon, doc, last)
        body = {"principal": "bob", "since": iso(since - EDGE), "until": iso(until + EDGE)}
        rolled = await http.post("/v1/docs/alice/group/rollback", json=body, headers=bob.auth)
        assert rolled.status_code == 200  # bob is an editor: editors may roll back
        got = rolled.json()
        assert got["undone"] == 5
        state = await json_state(http, f"/v1/docs/{doc}/state", alice.auth)
        elements = state["elements"]
        assert set(elements) == {a_card, a_text, a_doomed, a_during, b_early, b_late}
        assert b_scribble not in elements
        assert (elements[a_card]["x"], elements[a_card]["y"]) == (10, 10)
        assert elements[a_text]["text"] == "alice's words!"
        assert elements[a_doomed]["card_id"] == "alice-doomed"
        # Attributed to whoever asked, as a restore-origin edit; it is in the activity.
        trail = (await http.get(f"/v1/docs/{doc}/activity", headers=alice.auth)).json()
        entry = trail["activity"][-1]
        assert (entry["seq"], entry["principal"], entry["origin"]) == (got["seq"], "bob", "restore")
        assert any(c["type"] == "element_deleted" for c in entry["changes"])

        # Nothing of bob in a window: nothing to do.
        empty = {"principal": "bob", "since": iso(until + 1000), "until": iso(until + 2000)}
        r = await http.post(f"/v1/docs/{doc}/rollback", json=empty, headers=alice.auth)
        assert r.json() == {"seq": got["seq"], "undone": 0}
        bad = {"principal": "bob", "since": "yesterday", "until": iso(until)}
        assert (
            await http.post(f"/v1/docs/{doc}/rollback", json=bad, headers=alice.auth)
        ).status_code == 400


async def test_activity_lists_who_did_what_filtered_by_principal_and_time(
    any_daemon: RunningDaemon,
):
    doc = "alice/trail"
    async with httpx.AsyncClient(base_url=any_daemon.http) as http:
        alice = CanvasWriter(http, any_daemon, doc, "alice")
        await alice.edit(lambda c: c.init("Trail"))
        await http.put(
            f"/v1/docs/{doc}/access",
            json={"mode": "shared", "grants": {"bob": "viewer", "carol": "editor"}},
            headers=alice.auth,
        )
        carol = CanvasWriter(http, any_daemon, doc, "carol")
        await carol.pull()
        card, s2 = await carol.edit(lambda c: c.add_card("tarot", "the-sun", 1, 1))
        _, s3 = await carol.edit(lambda c: c.move(card, 50, 60))
        await alice.pull()
        _, s4 = await alice.edit(lambda c: c.rename("Trail, renamed"))
        viewer = {"authorization": f"Bearer {any_daemon.token('bob')}"}
        everything = (await http.get(f"/v1/docs/{doc}/activity", headers=viewer)).json()
        assert [(e["seq"], e["principal"], e["origin"]) for e in everything["activity"]] == [
            (1, "alice", "http"),
            (s2, "carol", "http"),
            (s3, "carol", "http"),
            (s4, "alice", "http"),
        ]
        assert everything["truncated"] is False
        moved = everything["activity"][2]["changes"]
        assert [c["type"] for c in moved] == ["element_moved"]
        assert (moved[0]["x"], moved[0]["old_x"], moved[0]["principal"]) == (50, 1, "carol")
        carols = (await http.get(f"/v1/docs/{doc}/activity?principal=carol", headers=viewer)).json()
        assert [e["seq"] for e in carols["activity"]] == [s2, s3]
        since = iso(await _at(any_daemon, doc, s3) - EDGE)
        late = await http.get(
            f"/v1/docs/{doc}/activity", params={"since": since, "limit": "1"}, headers=viewer
        )
        assert [e["seq"] for e in late.json()["activity"]] == [s3]
        assert late.json()["truncated"] is True
        stranger = {"authorization": f"Bearer {any_daemon.token('mallory')}"}
        assert (await http.get(f"/v1/docs/{doc}/activity", headers=stranger)).status_code == 404
        refused = await http.post(
            f"/v1/docs/{doc}/rollback",
            json={"principal": "carol", "since": since, "until": iso(2e9)},
            headers=viewer,
        )
        assert refused.status_code == 403
