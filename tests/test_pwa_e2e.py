"""End-to-end: the PWA in headless Chromium (Playwright, Debian's chromium) against a daemon.

The daemon serves the built PWA (``pwa/dist``) and runs with the development login. Each browser
user reaches it through their own loopback TCP proxy, so that "offline" is real: the proxy is
cut (nothing gets through, WebSocket or HTTP) and the context is set offline (the page sees
``navigator.onLine`` false), and both are undone to come back online. What reached the server is
checked through the HTTP API (``GET /v1/docs/{id}/state`` as JSON), never through the UI alone.

Screenshots of the journal, the canvas and the sharing dialog go to ``artifacts/e2e/``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio
import pytest

from tests.support import pwa_users
from tests.support.browser import artifact
from tests.support.pwa_users import (
    PHONE,
    WAIT_MS,
    converge,
    doc_json,
    new_canvas,
    server_json,
    share,
)

pytestmark = [pytest.mark.anyio, pytest.mark.node, pytest.mark.slow]

# The daemon serving the app, the browser and the signed-in users (tests/support/pwa_users.py).
app, browser, chromium = pwa_users.app, pwa_users.browser, pwa_users.chromium
users = pwa_users.users


async def export(page: Any, item: str) -> bytes:
    """Pick ``item`` in the Export menu; return the downloaded file's bytes."""
    await page.get_by_role("button", name="Export").click()
    async with page.expect_download() as info:
        await page.get_by_role("menuitem", name=item).click()
    download = await info.value
    path = await download.path()
    assert path is not None
    return await anyio.Path(path).read_bytes()


async def center_of(locator: Any) -> tuple[float, float]:
    box = await locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


async def drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    (x0, y0), (x1, y1) = start, end
    await page.mouse.move(x0, y0)
    await page.mouse.down()
    for i in range(1, 13):
        await page.mouse.move(x0 + (x1 - x0) * i / 12, y0 + (y1 - y0) * i / 12)
    await page.mouse.up()


async def test_shared_canvas_live_strokes_and_concurrent_moves(app, users):
    """Acceptance 1: a stroke drawn by alice appears for bob; both move the same card at once
    and end identical (on both pages and on the server). Screenshots: canvas, sharing dialog."""
    from playwright.async_api import expect

    alice = await users("alice")
    doc = await new_canvas(alice, "Mind map")
    page = alice.page

    # Share with bob as an editor, through the dialog.
    await page.get_by_role("button", name="Share").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_placeholder("Add a person by name").fill("bob")
    await dialog.get_by_label("Role").select_option("editor")
    await dialog.get_by_role("button", name="Add").click()
    await dialog.get_by_placeholder("Add a person by name").fill("carol")
    await dialog.get_by_role("button", name="Add").click()
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    await page.screenshot(path=artifact("sharing-dialog.png"))
    await dialog.get_by_role("button", name="Close").click()

    bob = await users("bob")
    await bob.page.goto(f"{bob.origin}/#/canvas/{doc}")
    await expect(bob.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await expect(bob.page.locator(".presence-names")).to_contain_text("alice")
    await expect(page.locator(".presence-names")).to_contain_text("bob")

    # Alice draws a stroke: it appears for bob.
    canvas = page.get_by_test_id("canvas")
    box = await canvas.bounding_box()
    await page.get_by_role("button", name="Pen (P)").click()
    x0, y0 = box["x"] + 160, box["y"] + box["height"] - 220
    await page.mouse.move(x0, y0)
    await page.mouse.down()
    for i in range(1, 40):
        await page.mouse.move(x0 + i * 6, y0 - 40 * abs((i % 14) - 7) / 7)
    await page.mouse.up()
    await expect(bob.page.locator("[data-kind=stroke]")).to_have_count(1, timeout=WAIT_MS)
    # Undo and redo of her own edit (Y.UndoManager), seen by bob too.
    await page.get_by_role("button", name="Undo (Ctrl+Z)").click()
    await expect(bob.page.locator("[data-kind=stroke]")).to_have_count(0, timeout=WAIT_MS)
    await page.keyboard.press("Control+Shift+Z")
    await expect(bob.page.locator("[data-kind=stroke]")).to_have_count(1, timeout=WAIT_MS)

    # Alice places a card; bob sees it; both drag it at the same time.
    await page.get_by_role("button", name="Cards from the deck").click()
    await page.get_by_role("button", name="Place card Hope").click()
    await page.get_by_role("button", name="Close the deck").click()
    await expect(bob.page.locator("[data-kind=card]")).to_have_count(1, timeout=WAIT_MS)
    # Bob's cursor over the canvas, for alice to see.
    bob_canvas = await bob.page.get_by_test_id("canvas").bounding_box()
    await bob.page.mouse.move(bob_canvas["x"] + 500, bob_canvas["y"] + 200)
    await expect(page.locator(".cursor")).to_have_count(1, timeout=WAIT_MS)

    a_card = await center_of(page.locator("[data-kind=card]"))
    b_card = await center_of(bob.page.locator("[data-kind=card]"))
    await asyncio.gather(
        drag(page, a_card, (a_card[0] + 180, a_card[1] - 60)),
        drag(bob.page, b_card, (b_card[0] - 150, b_card[1] + 90)),
    )
    final = await converge(app, doc, alice, bob)
    kinds = sorted(e["kind"] for e in final["elements"].values())
    assert kinds.count("card") == 1 and kinds.count("stroke") == 1
    card = next(e for e in final["elements"].values() if e["kind"] == "card")
    assert card["author"] == "alice" and card["deck"] == "words" and card["card_id"] == "hope"
    stroke = next(e for e in final["elements"].values() if e["kind"] == "stroke")
    assert len(stroke["points"]) >= 30 and len(stroke["points"]) % 3 == 0
    await bob.page.mouse.move(bob_canvas["x"] + 420, bob_canvas["y"] + 260)
    await expect(page.locator(".cursor")).to_have_count(1)
    await page.screenshot(path=artifact("canvas.png"))
    await bob.page.screenshot(path=artifact("canvas-bob.png"))

    # Export: PNG (rendered from the same SVG) and JSON (the canvas/1 document).
    png = await export(page, "Export PNG")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    artifact("canvas-export.png").write_bytes(png)
    exported = json.loads(await export(page, "Export JSON"))
    assert exported["meta"]["schema"] == "canvas/1" and exported == final



async def test_offline_journal_survives_a_reload_and_syncs(app, users):
    """Acceptance 2: offline, alice writes and edits entries, reloads the page (the service
    worker starts the app), comes back online; the entries reach the server, status ``saved``."""
    from playwright.async_api import expect

    alice = await users("alice")
    page = alice.page
    await page.get_by_role("link", name="My journal").click()
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=WAIT_MS)

    await alice.offline()
    await expect(alice.status()).to_have_attribute("data-status", "offline", timeout=WAIT_MS)

    await page.get_by_role("button", name="New entry").click()
    await page.get_by_label("Entry title").fill("On the train")
    await page.get_by_label("Entry text").fill("No signal since the tunnel.\nThe fields are white.")
    await page.get_by_label("Add a tag").fill("train")
    await page.get_by_label("Add a tag").press("Enter")
    await page.get_by_label("Session code").fill("s-42")
    await page.get_by_role("button", name="In a session").click()

    await page.get_by_role("button", name="New entry").click()
    await page.get_by_label("Entry title").fill("שלום — מחשבות")
    await page.get_by_label("Entry text").fill("כתבתי את זה ברכבת, בלי קליטה.")

    # Edit the first entry again.
    await page.locator(".entry-item", has_text="On the train").click()
    body = page.get_by_label("Entry text")
    await body.fill("No signal since the tunnel.\nThe fields are white, then green.")
    await expect(alice.status()).to_have_attribute("data-status", "offline")
    pending = int(await alice.status().get_attribute("data-pending"))
    assert pending > 0

    await page.reload()  # still offline: the service worker serves the app shell
    entry = page.locator(".entry-item", has_text="On the train")
    await expect(entry).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator(".entry-item", has_text="שלום — מחשבות")).to_be_visible()
    await expect(alice.status()).to_have_attribute("data-status", "offline")
    assert int(await alice.status().get_attribute("data-pending")) >= 1
    await expect(page.get_by_label("Entry text")).to_have_value(
        "No signal since the tunnel.\nThe fields are white, then green.")
    await page.screenshot(path=artifact("journal-offline.png"))

    await alice.online()
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    stored = await server_json(app, "alice/journal")
    entries = {e["title"]: e for e in stored["entries"].values()}
    assert entries["On the train"]["body"].endswith("then green.")
    assert entries["On the train"]["tags"] == ["train"]
    assert (entries["On the train"]["mode"], entries["On the train"]["session_id"]) == (
        "in-session", "s-42")
    assert entries["שלום — מחשבות"]["body"] == "כתבתי את זה ברכבת, בלי קליטה."
    assert stored["meta"] == {"schema": "journal/1", "title": "My journal"}
    await page.screenshot(path=artifact("journal.png"))


async def test_concurrent_offline_edits_keep_both(app, users):
    """Acceptance 3: alice and bob edit one shared journal offline, reconnect, keep both edits."""
    from playwright.async_api import expect

    alice = await users("alice")
    await alice.page.get_by_role("link", name="My journal").click()
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await alice.page.get_by_role("button", name="New entry").click()
    await alice.page.get_by_label("Entry title").fill("Plans")
    await alice.page.get_by_label("Entry text").fill("Meet at the station.")
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await share(app, "alice/journal", {"bob": "editor"})

    bob = await users("bob")
    await bob.page.goto(f"{bob.origin}/#/journal/alice/journal")
    await bob.page.locator(".entry-item", has_text="Plans").click(timeout=WAIT_MS)
    await expect(bob.page.get_by_label("Entry text")).to_have_value("Meet at the station.")
    await expect(bob.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)

    await alice.offline()
    await bob.offline()
    await expect(alice.status()).to_have_attribute("data-status", "offline", timeout=WAIT_MS)
    await expect(bob.status()).to_have_attribute("data-status", "offline", timeout=WAIT_MS)
    await alice.page.get_by_label("Entry text").fill("Meet at the station. Bring tea.")
    await alice.page.get_by_label("Add a tag").fill("alice")
    await alice.page.get_by_label("Add a tag").press("Enter")
    await bob.page.get_by_label("Entry text").fill("Saturday: Meet at the station.")
    await bob.page.get_by_role("button", name="New entry").click()
    await bob.page.get_by_label("Entry title").fill("Bob's note")

    await asyncio.gather(alice.online(), bob.online())
    final = await converge(app, "alice/journal", alice, bob)
    entries = {e["title"]: e for e in final["entries"].values()}
    assert entries["Plans"]["body"] == "Saturday: Meet at the station. Bring tea."
    assert entries["Plans"]["tags"] == ["alice"]
    assert "Bob's note" in entries
    for user in (alice, bob):
        await user.page.locator(".entry-item", has_text="Plans").click()
        await expect(user.page.get_by_label("Entry text")).to_have_value(
            "Saturday: Meet at the station. Bring tea.")


async def test_viewer_sees_live_edits_and_cannot_write(app, users):
    """Acceptance 4: bob, a viewer, sees alice's edits live, the UI does not let him edit, and a
    write forced from the console (through the app's document and over a raw socket) does not
    reach the server."""
    from playwright.async_api import expect

    alice = await users("alice")
    doc = await new_canvas(alice, "Three-card reading")
    await share(app, doc, {"bob": "viewer"})
    bob = await users("bob", viewport=PHONE, is_mobile=True, has_touch=True)
    page = bob.page
    await page.goto(f"{bob.origin}/#/canvas/{doc}")
    await expect(bob.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await expect(page.get_by_text("View only")).to_be_visible()
    for tool in ("Pen (P)", "Shape (S)", "Text (T)", "Connector (C)", "Cards from the deck"):
        await expect(page.get_by_role("button", name=tool)).to_be_disabled()
    await expect(page.get_by_label("Canvas title")).to_be_disabled()

    # Live: alice adds a card and presents; bob sees the card and follows her view.
    await alice.page.get_by_role("button", name="Cards from the deck").click()
    await alice.page.get_by_role("button", name="Place card Courage").click()
    await expect(page.locator("[data-kind=card]")).to_have_count(4, timeout=WAIT_MS)
    await alice.page.get_by_role("button", name="Present", exact=True).click()
    await page.get_by_role("button", name="Follow alice").click()
    await expect(page.get_by_role("button", name="Following alice ✕")).to_be_visible()
    await page.screenshot(path=artifact("canvas-viewer-phone.png"))

    # The UI: a drag and the keyboard change nothing.
    before = await server_json(app, doc)
    card = await center_of(page.locator("[data-kind=card]").first)
    await drag(page, card, (card[0] + 80, card[1] + 80))
    await page.keyboard.press("Delete")
    assert await doc_json(bob, doc) == before  # 20 == 20.0: JS numbers, Python floats

    # The console: through the app's own document, then over a raw socket.
    await page.evaluate(
        """(name) => {
          const doc = window.syncd.client.documents.get(name)
          doc.canvas().addText('forced from the console', 0, 0)
        }""",
        doc,
    )
    # That edit is rolled back by dropping the replica (pwa/src/lib/rollback.ts); wait for the
    # fresh one, or the next step could find no document, or the closing one.
    await expect(page.get_by_test_id("refused-notice")).to_be_visible(timeout=WAIT_MS)
    await page.wait_for_function(
        """(name) => {
          const doc = window.syncd.client.documents.get(name)
          return Boolean(doc && !doc.closed && doc.loaded && doc.pending === 0)
        }""",
        arg=doc,
        timeout=WAIT_MS,
    )
    refused = await page.evaluate(
        """async (name) => {
          const doc = window.syncd.client.documents.get(name)
          const token = JSON.parse(localStorage.getItem('syncd.session')).token
          const update = await new Promise((resolve) => {
            doc.ydoc.once('update', (u) => resolve(u))
            doc.ydoc.getMap('meta').set('title', 'taken over')
          })
          const enc = new TextEncoder()
          const varUint = (n) => {
            const out = []
            while (n > 127) { out.push(128 | (n & 127)); n >>>= 7 }
            out.push(n)
            return out
          }
          const bytes = (b) => [...varUint(b.length), ...b]
          const str = (s) => bytes(enc.encode(s))
          const frame = (...parts) => new Uint8Array([...str(name), ...parts.flat()])
          const ws = new WebSocket(location.origin.replace('http', 'ws') + '/v1/sync')
          ws.binaryType = 'arraybuffer'
          return await new Promise((resolve, reject) => {
            setTimeout(() => reject(new Error('no SyncStatus')), 8000)
            ws.onopen = () => ws.send(frame([2, 0], str(token), str('console')))
            ws.onmessage = (event) => {
              const data = new Uint8Array(event.data)
              const type = data[1 + data[0]]
              if (type === 2 && data[2 + data[0]] === 2) ws.send(frame([0, 2], bytes(update)))
              if (type === 8) { resolve(data[2 + data[0]] === 0); ws.close() }
            }
          })
        }""",
        doc,
    )
    assert refused, "the server acknowledged a viewer's update as stored"
    # Issue 13: the refused edits are rolled back (a fresh replica), never left "Syncing…".
    await expect(page.get_by_test_id("refused-notice")).to_be_visible(timeout=WAIT_MS)
    await expect(bob.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await expect(page.get_by_label("Canvas title")).to_have_value("Three-card reading")

    # Alice keeps editing; the server has her edits and none of bob's.
    await alice.page.get_by_role("button", name="Place card Joy").click()
    await expect(page.locator("[data-kind=card]")).to_have_count(5, timeout=WAIT_MS)
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    stored = await server_json(app, doc)
    assert stored["meta"]["title"] == "Three-card reading"
    texts = [e.get("text") for e in stored["elements"].values()]
    assert "forced from the console" not in texts
    assert len(stored["elements"]) == len(before["elements"]) + 1
    await alice.page.screenshot(path=artifact("canvas-presenter.png"))


async def test_screens_home_templates_and_phone_journal(app, users):
    """Acceptance 5 (the rest of the screenshots): home, templates, the journal on a phone."""
    from playwright.async_api import expect

    alice = await users("alice", viewport=PHONE, is_mobile=True, has_touch=True)
    page = alice.page
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await page.screenshot(path=artifact("home-phone.png"))
    await page.get_by_role("button", name="New canvas").click()
    await page.screenshot(path=artifact("templates-phone.png"))
    await page.get_by_role("button", name="Close").click()
    await page.get_by_role("link", name="My journal").click()
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    for title, text in (("Morning pages", "Slept well. Long walk planned."),
                        ("مرحبا", "كتبت هذا في القطار")):
        await page.get_by_role("button", name="New entry").click()
        await page.get_by_label("Entry title").fill(title)
        await page.get_by_label("Entry text").fill(text)
        await page.get_by_role("link", name="All entries").click()
    await page.get_by_label("Search entries").fill("walk")
    await expect(page.locator(".entry-item")).to_have_count(1)
    await page.get_by_label("Search entries").fill("")
    await page.screenshot(path=artifact("journal-phone-list.png"))
    await page.locator(".entry-item", has_text="مرحبا").click()
    await expect(page.get_by_label("Entry text")).to_have_attribute("dir", "auto")
    await page.screenshot(path=artifact("journal-phone-entry.png"))
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)

    markdown = (await export(page, "Export Markdown")).decode()
    assert markdown.startswith("# My journal\n")
    assert "## Morning pages" in markdown and "كتبت هذا في القطار" in markdown
    exported = json.loads(await export(page, "Export JSON"))
    assert exported == await server_json(app, "alice/journal")
