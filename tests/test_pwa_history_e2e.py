"""End-to-end: the PWA's history panel, trash and recovered-edits notice in headless Chromium.

Issue 11 acceptance 6: a checkpoint, edits, a restore through the panel (with its confirmation),
and the canvas shows the checkpoint's content again, on the page and on the server. Also the
preview and the activity, the trash (move a canvas there, restore it whole), and the notice a
page shows when the SDK kept offline edits aside because the canvas was purged and created
again meanwhile. The fixtures (daemon serving the built PWA, browser users behind their own
proxies) are those of ``tests/test_pwa_e2e.py``. Screenshots go to ``artifacts/e2e/``.
"""

# The fixtures are imported from test_pwa_e2e, so tests' parameters "redefine" them.

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest

from crdt.schemas import Canvas
from tests.support import pwa_users
from tests.support.browser import artifact
from tests.support.pwa_users import WAIT_MS, User, converge, new_canvas, server_json
from tests.support.pwa_users import doc_json as page_doc_json
from tests.support.servers import RunningDaemon

pytestmark = [pytest.mark.anyio, pytest.mark.node, pytest.mark.slow]

# The daemon serving the app, the browser and the signed-in users (tests/support/pwa_users.py).
app, browser, chromium = pwa_users.app, pwa_users.browser, pwa_users.chromium
users = pwa_users.users


async def place_cards(user: User, *words: str) -> None:
    page = user.page
    await page.get_by_role("button", name="Cards from the deck").click()
    for word in words:
        await page.get_by_role("button", name=f"Place card {word}").click()
    await page.get_by_role("button", name="Close the deck").click()


def card_ids(doc_json: dict[str, Any]) -> list[str]:
    return sorted(e["card_id"] for e in doc_json["elements"].values() if e["kind"] == "card")


async def test_checkpoint_edit_restore_shows_the_checkpoint(app, users):
    from playwright.async_api import expect

    alice = await users("alice")
    page = alice.page
    doc = await new_canvas(alice)
    await place_cards(alice, "Hope", "Joy")
    checkpoint = await converge(app, doc, alice)
    assert card_ids(checkpoint) == ["hope", "joy"]

    # A checkpoint, made from the panel.
    await page.get_by_role("button", name="History").click()
    panel = page.get_by_test_id("history-panel")
    await panel.get_by_label("Checkpoint name").fill("Two cards")
    await panel.get_by_role("button", name="Create checkpoint").click()
    await expect(panel.get_by_role("status")).to_contain_text("Checkpoint “Two cards” created")
    versions = panel.locator(".version")
    await expect(versions.first).to_contain_text("Two cards")
    await page.screenshot(path=artifact("history-versions.png"))
    await page.get_by_role("button", name="Close").click()

    # Edits after it: one card deleted, two more placed.
    await page.locator("[data-kind=card]").last.click()  # the topmost: cards overlap
    await page.get_by_role("button", name="Delete selected").click()
    await place_cards(alice, "Fear", "Home")
    edited = await converge(app, doc, alice)
    assert len(card_ids(edited)) == 3 and card_ids(edited) != card_ids(checkpoint)

    # Preview (read only: the live canvas is untouched), then restore with confirmation.
    await page.get_by_role("button", name="History").click()
    row = panel.locator(".version", has_text="Two cards")
    await row.get_by_role("button", name="Preview").click()
    preview = panel.get_by_test_id("version-preview")
    await expect(preview).to_have_attribute("data-elements", "2")
    await expect(page.get_by_test_id("canvas")).to_have_attribute("data-elements", "3")
    await page.screenshot(path=artifact("history-preview.png"))
    await panel.get_by_role("button", name="Restore this version…").click()
    confirm = panel.get_by_role("alertdialog")
    await expect(confirm).to_contain_text("Restore “Two cards”?")
    await page.screenshot(path=artifact("history-restore-confirm.png"))
    await confirm.get_by_role("button", name="Restore", exact=True).click()
    await expect(panel.get_by_role("status")).to_contain_text("Restored “Two cards”")

    # The activity says who did what, the restore included.
    await panel.get_by_role("tab", name="Activity").click()
    activity = panel.locator(".activity-item")
    await expect(activity.first).to_contain_text("restored a version", timeout=WAIT_MS)
    await expect(panel.locator(".activity")).to_contain_text("added a card")
    await page.screenshot(path=artifact("history-activity.png"))
    await page.get_by_role("button", name="Close").click()

    # The canvas shows the checkpoint's content: on the page and on the server.
    await expect(page.get_by_test_id("canvas")).to_have_attribute(
        "data-elements", "2", timeout=WAIT_MS
    )
    restored = await converge(app, doc, alice)
    assert card_ids(restored) == ["hope", "joy"]
    assert restored["elements"] == checkpoint["elements"]
    await page.screenshot(path=artifact("history-restored.png"))


async def test_trash_and_restore_bring_a_canvas_back_whole(app, users):
    from playwright.async_api import expect

    alice = await users("alice")
    page = alice.page
    doc = await new_canvas(alice, "Mind map")
    before = await converge(app, doc, alice)
    title = before["meta"]["title"]

    await page.get_by_role("button", name="Move this canvas to the trash").click()
    await page.get_by_role("dialog").get_by_role("button", name="Move to trash").click()
    await expect(page.get_by_role("heading", name="Canvases")).to_be_visible()
    trash = page.locator(".trash-item", has_text=title)
    await expect(trash).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator(".cards .doc-card", has_text=title)).to_have_count(0)
    async with httpx.AsyncClient(base_url=app.http) as http:
        r = await http.get(
            f"/v1/docs/{doc}/state", headers={"authorization": f"Bearer {app.token('alice')}"}
        )
    assert r.status_code == 404  # in the trash: not readable
    await page.screenshot(path=artifact("trash.png"))

    await trash.get_by_role("button", name="Restore").click()
    await expect(page.locator(".trash-item", has_text=title)).to_have_count(0, timeout=WAIT_MS)
    await page.locator(".cards .doc-card", has_text=title).click()
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    assert await server_json(app, doc) == before
    assert await page_doc_json(alice, doc) == before


async def purge_and_create_again(app: RunningDaemon, doc: str) -> Canvas:
    headers = {"authorization": f"Bearer {app.token('alice')}"}
    fresh = Canvas.create("Started again", author="alice-tablet")
    fresh.add_text("fresh start", 10.0, 10.0)
    async with httpx.AsyncClient(base_url=app.http, headers=headers) as http:
        assert (await http.delete(f"/v1/docs/{doc}", params={"purge": "true"})).status_code == 204
        assert (await http.put(f"/v1/docs/{doc}")).status_code == 201
        r = await http.post(
            f"/v1/docs/{doc}/updates",
            content=fresh.doc.get_update(),
            headers={"content-type": "application/octet-stream"},
        )
        assert r.status_code == 200, r.text
    return fresh


async def test_offline_edits_on_a_purged_canvas_are_kept_aside_with_a_notice(app, users):
    from playwright.async_api import expect

    alice = await users("alice")
    page = alice.page
    doc = await new_canvas(alice)
    await place_cards(alice, "Hope")
    await converge(app, doc, alice)

    await alice.offline()
    await expect(alice.status()).to_have_attribute("data-status", "offline", timeout=WAIT_MS)
    await place_cards(alice, "Joy", "Fear")
    await expect(alice.status()).to_have_attribute("data-pending", "2")
    fresh = await purge_and_create_again(app, doc)
    await alice.online()

    notice = page.get_by_test_id("recovered-notice")
    await expect(notice).to_be_visible(timeout=WAIT_MS)
    await expect(notice).to_have_attribute("data-edits", "2")
    await expect(notice).to_contain_text("2 changes made on this device were not merged")
    # The page shows the new lineage only; nothing old reached the server.
    await expect(page.get_by_test_id("canvas")).to_have_attribute(
        "data-elements", "1", timeout=WAIT_MS
    )
    shown = await converge(app, doc, alice)
    assert shown == fresh.to_json()
    await page.screenshot(path=artifact("recovered-notice.png"))

    async with page.expect_download() as info:
        await notice.get_by_role("button", name="Download them").click()
    path = await (await info.value).path()
    assert path is not None
    saved = json.loads(await anyio.Path(path).read_text(encoding="utf-8"))
    assert saved[0]["unsent_edits"] == 2
    assert card_ids(saved[0]["content"]) == ["fear", "hope", "joy"]
    await notice.get_by_role("button", name="Dismiss").click()
    await expect(notice).to_have_count(0)
    assert (
        await page.evaluate(
            "(name) => window.syncd.client.documents.get(name).recovered.length", doc
        )
        == 0
    )


async def test_journal_history_preview_and_restore(app, users):
    from playwright.async_api import expect

    alice = await users("alice")
    page = alice.page
    await page.get_by_role("link", name="My journal").click()
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await page.get_by_role("button", name="New entry").click()
    await page.get_by_label("Entry title").fill("Monday")
    await page.get_by_label("Entry text").fill("The first version of this entry.")
    checkpoint = await converge(app, "alice/journal", alice)

    await page.get_by_role("button", name="History").click()
    panel = page.get_by_test_id("history-panel")
    await panel.get_by_label("Checkpoint name").fill("First draft")
    await panel.get_by_role("button", name="Create checkpoint").click()
    await expect(panel.locator(".version").first).to_contain_text("First draft")
    await page.get_by_role("button", name="Close").click()

    await page.get_by_label("Entry text").fill("Rewritten entirely, later.")
    await converge(app, "alice/journal", alice)

    await page.get_by_role("button", name="History").click()
    await (
        panel.locator(".version", has_text="First draft")
        .get_by_role("button", name="Preview")
        .click()
    )
    preview = panel.get_by_test_id("version-preview")
    await expect(preview).to_contain_text("The first version of this entry.")
    await expect(page.get_by_label("Entry text")).to_have_value("Rewritten entirely, later.")
    await page.screenshot(path=artifact("history-journal-preview.png"))
    await panel.get_by_role("button", name="Restore this version…").click()
    await panel.get_by_role("alertdialog").get_by_role("button", name="Restore", exact=True).click()
    await expect(panel.get_by_role("status")).to_contain_text("Restored “First draft”")
    await page.get_by_role("button", name="Close").click()

    body = page.get_by_label("Entry text")
    await expect(body).to_have_value("The first version of this entry.", timeout=WAIT_MS)
    restored = await converge(app, "alice/journal", alice)
    assert restored["entries"] == checkpoint["entries"]
