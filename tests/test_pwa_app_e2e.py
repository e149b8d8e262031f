"""End-to-end: the app shell as a participant judges it (issue 13), and the privacy page (issue 12).

Headless Chromium (Playwright, Debian's chromium) against an in-process daemon with the dev
login, each user in their own browser context behind their own loopback proxy (offline is real:
the proxy is cut). What the server holds is checked through the HTTP API, never the UI alone.

Covers: "Shared with me" from the server's listing (also refreshed when Home is shown again); a
mistyped id never creating a document; rename and delete from Home; a new canvas without a
console error; the journal's status in plain words; a viewer's refused edit rolled back; the
privacy page (consent, export); keyboard reachability with a visible focus and the axe-core
check on Home, journal, sharing dialog and privacy page; phone-size screenshots.
"""

from __future__ import annotations

import io
import zipfile

import anyio
import pytest

from tests.support import pwa_users
from tests.support.axe import assert_accessible
from tests.support.browser import artifact
from tests.support.pwa_users import (
    PHONE,
    PHONE_OPTIONS,
    WAIT_MS,
    go_home,
    load,
    new_canvas,
    no_horizontal_scroll,
    reload,
    server_get,
    server_json,
    share,
    tab_through,
)

pytestmark = [pytest.mark.anyio, pytest.mark.node, pytest.mark.slow]

# The fixtures, in this module's namespace so that pytest finds them.
app, browser, chromium = pwa_users.app, pwa_users.browser, pwa_users.chromium
users = pwa_users.users


async def test_shared_with_me_lists_what_the_server_knows(app, users):
    """Issue 13: a canvas alice shares appears under bob's "Shared with me" with its title and
    his role, without pasting an id; Home reads the list again when it is shown again."""
    from playwright.async_api import expect

    alice = await users("alice")
    doc = await new_canvas(alice, "Mind map")
    assert not alice.console_errors, f"a new canvas logged errors: {alice.console_errors}"

    bob = await users("bob", **PHONE_OPTIONS)
    shared = bob.page.locator(".shared-section")
    await expect(shared.get_by_text("Nothing yet")).to_be_visible(timeout=WAIT_MS)

    await share(app, doc, {"bob": "viewer"})
    # The tab comes back to the front: Home asks the server again.
    await bob.page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    card = shared.locator(".doc-card", has_text="Mind map")
    await expect(card).to_be_visible(timeout=WAIT_MS)
    await expect(card).to_contain_text("from alice · can view")
    await no_horizontal_scroll(bob.page)
    await bob.page.screenshot(path=artifact("home-shared-phone.png"))

    await card.click()
    await expect(bob.page.get_by_test_id("canvas")).to_be_visible()
    await expect(bob.page.get_by_text("View only")).to_be_visible(timeout=WAIT_MS)

    # Revoked: gone from the list once Home is shown again.
    await share(app, doc, {})
    await go_home(bob)
    await expect(shared.get_by_text("Nothing yet")).to_be_visible(timeout=WAIT_MS)


async def test_a_mistyped_id_never_creates_a_document(app, users):
    """Issue 13: opening an id that does not exist says so; only one's own name offers to
    create it, and only when asked; nothing is created on the server meanwhile."""
    from playwright.async_api import expect

    bob = await users("bob")
    page = bob.page
    await page.get_by_label("Open by link or id").fill("alice/canvas-tpyo")
    await page.get_by_role("button", name="Open", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("does not exist, or it is not shared")
    assert "#/canvas/" not in page.url

    # A link to a mistyped id of one's own.
    await page.goto(f"{bob.origin}/#/canvas/bob/canvas-tpyo")
    missing = page.get_by_role("heading", name="No canvas called “bob/canvas-tpyo”")
    await expect(missing).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_test_id("canvas")).to_have_count(0)
    assert (await server_get(app, "/v1/docs/bob/canvas-tpyo", "bob")).status_code == 404
    await assert_accessible(page, "the missing-document page")

    # Someone else's: no offer to create.
    await page.goto(f"{bob.origin}/#/canvas/alice/canvas-tpyo")
    missing = page.get_by_role("heading", name="No canvas called “alice/canvas-tpyo”")
    await expect(missing).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_role("button", name="Create a new canvas")).to_have_count(0)

    # Asked for: created (and its page meets no 404: the checks above logged theirs).
    await page.goto(f"{bob.origin}/#/canvas/bob/canvas-tpyo")
    create = page.get_by_role("button", name="Create a new canvas called “canvas-tpyo”")
    await expect(create).to_be_visible(timeout=WAIT_MS)
    bob.console_errors.clear()
    await create.click()
    await expect(page.get_by_test_id("canvas")).to_be_visible()
    await expect(bob.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    assert not bob.console_errors, f"creating it logged errors: {bob.console_errors}"
    assert (await server_get(app, "/v1/docs/bob/canvas-tpyo", "bob")).status_code == 200


async def test_rename_and_delete_from_home(app, users):
    """Issue 13: Home renames a document (its title in its content, canvas/1 and journal/1) and
    moves it to the trash after a confirmation."""
    from playwright.async_api import expect

    alice = await users("alice")
    page = alice.page
    doc = await new_canvas(alice, "Blank")
    await go_home(alice)

    await page.get_by_role("button", name="Rename “Untitled canvas”").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("New name").fill("Goals for spring")
    await dialog.get_by_role("button", name="Rename").click()
    await expect(page.locator(".doc-card", has_text="Goals for spring")).to_be_visible()

    async def title_on_server(doc: str) -> str | None:
        return (await server_json(app, doc))["meta"].get("title")

    with anyio.fail_after(WAIT_MS / 1000):
        while await title_on_server(doc) != "Goals for spring":
            await page.wait_for_timeout(100)  # polling the server, not waiting for the UI

    # The journal too: its own title field shows the new name.
    await page.get_by_role("button", name="Rename “My journal”").click()
    await page.get_by_role("dialog").get_by_label("New name").fill("Train thoughts")
    await page.get_by_role("dialog").get_by_role("button", name="Rename").click()
    await page.get_by_role("link", name="Train thoughts").click()
    await expect(page.get_by_label("Journal title")).to_have_value("Train thoughts")
    await go_home(alice)

    await page.get_by_role("button", name="Move “Goals for spring” to the trash").click()
    confirm = page.get_by_role("dialog", name="Move “Goals for spring” to the trash?")
    await expect(confirm).to_be_visible()
    await confirm.get_by_role("button", name="Cancel").click()
    assert (await server_get(app, f"/v1/docs/{doc}", "alice")).status_code == 200

    await page.get_by_role("button", name="Move “Goals for spring” to the trash").click()
    await confirm.get_by_role("button", name="Move to trash").click()
    await expect(page.locator(".trash-item", has_text="Goals for spring")).to_be_visible(
        timeout=WAIT_MS
    )
    await expect(page.locator(".cards .doc-card", has_text="Goals for spring")).to_have_count(0)
    assert (await server_get(app, f"/v1/docs/{doc}", "alice")).status_code == 404
    trash = (await server_get(app, "/v1/trash", "alice")).json()["trash"]
    assert [t["id"] for t in trash] == [doc]


async def test_journal_status_in_plain_words(app, users):
    """Issue 13: offline, one short entry reads "Saved on this device · will sync when online"
    (no keystroke count); the entry's mode reads "On my own" / "In a session"."""
    from playwright.async_api import expect

    alice = await users("alice")
    page = alice.page
    await page.get_by_role("link", name="My journal").click()
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)

    await alice.offline()
    await expect(alice.status()).to_have_attribute("data-status", "offline", timeout=WAIT_MS)
    await page.get_by_role("button", name="New entry").click()
    await page.get_by_label("Entry title").fill("Tuesday")
    await page.get_by_label("Entry text").press_sequentially("Short walk, long thoughts.")
    assert int(await alice.status().get_attribute("data-pending")) > 5  # one per keystroke
    await expect(alice.status()).to_contain_text("Saved on this device")
    await expect(alice.status()).to_have_attribute(
        "title", "Saved on this device — will sync when online"
    )
    await expect(alice.status()).not_to_contain_text("change")

    group = page.get_by_role("group", name="Where this was written")
    await expect(group.get_by_role("button", name="On my own")).to_have_attribute(
        "aria-pressed", "true"
    )
    await group.get_by_role("button", name="In a session").click()
    await expect(
        page.get_by_role("status").filter(has_text="Type the session code")
    ).to_be_visible()
    await expect(page.get_by_label("Session code")).to_be_focused()
    await page.get_by_label("Session code").fill("s-42")
    await group.get_by_role("button", name="In a session").click()
    await expect(group.get_by_role("button", name="In a session")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(page.locator(".entry-item .badge")).to_have_text("In a session · s-42")

    await alice.online()
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await expect(alice.status()).to_contain_text("Saved")
    entries = (await server_json(app, "alice/journal"))["entries"]
    (entry,) = entries.values()
    assert entry["title"] == "Tuesday" and entry["body"] == "Short walk, long thoughts."
    assert entry["mode"] == "in-session" and entry["session_id"] == "s-42"


async def test_a_viewers_forced_edit_is_rolled_back(app, users):
    """Issue 13: bob, a viewer, forces a write from the console; the server refuses it, his page
    drops it (the entry disappears), tells him, and the status returns to Saved."""
    from playwright.async_api import expect

    alice = await users("alice")
    await alice.page.get_by_role("link", name="My journal").click()
    await alice.page.get_by_role("button", name="New entry").click()
    await alice.page.get_by_label("Entry title").fill("Alice's entry")
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await share(app, "alice/journal", {"bob": "viewer"})

    bob = await users("bob", **PHONE_OPTIONS)
    page = bob.page
    await page.goto(f"{bob.origin}/#/journal/alice/journal")
    await expect(bob.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await expect(page.locator(".entry-item")).to_have_count(1)

    await page.evaluate(
        """() => window.syncd.client.documents.get('alice/journal').journal()
                 .createEntry('Forced by bob', 'not allowed')"""
    )
    await expect(page.get_by_test_id("refused-notice")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator(".entry-item", has_text="Forced by bob")).to_have_count(0)
    await expect(bob.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await expect(page.locator(".entry-item", has_text="Alice's entry")).to_have_count(1)
    await page.screenshot(path=artifact("journal-viewer-refused-phone.png"))
    # What he wrote is not lost to him: the notice offers it as a file.
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Download it").click()
    path = await (await info.value).path()
    assert path is not None
    assert "Forced by bob" in await anyio.Path(path).read_text()
    await page.get_by_role("button", name="OK").click()
    await expect(page.get_by_test_id("refused-notice")).to_have_count(0)

    # Still live for alice's edits, and the server holds nothing of bob's.
    await alice.page.get_by_role("button", name="New entry").click()
    await alice.page.get_by_label("Entry title").fill("Second")
    await expect(page.locator(".entry-item", has_text="Second")).to_have_count(1, timeout=WAIT_MS)
    titles = {e["title"] for e in (await server_json(app, "alice/journal"))["entries"].values()}
    assert titles == {"Alice's entry", "Second"}
    # After a reload the refused entry does not come back from the device's storage either.
    await reload(page)
    await expect(bob.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await expect(page.locator(".entry-item")).to_have_count(2)


async def test_privacy_page_consent_and_export(app, users):
    """Issue 12: the participant sees and changes their analytics consent (the server's answer
    follows) and downloads their data export (a zip holding their journal)."""
    from playwright.async_api import expect

    alice = await users("alice", **PHONE_OPTIONS)
    page = alice.page
    await page.get_by_role("link", name="My journal").click()
    await page.get_by_role("button", name="New entry").click()
    await page.get_by_label("Entry title").fill("Exported entry")
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await go_home(alice)

    await page.get_by_role("link", name="Privacy", exact=True).click()
    await expect(page.get_by_role("heading", name="Privacy", level=1)).to_be_visible()
    switch = page.get_by_role("switch", name="Analytics of my activity")
    await expect(switch).not_to_be_checked(timeout=WAIT_MS)
    consent = await server_get(app, "/v1/principals/alice/consent", "alice")
    assert consent.status_code == 200, consent.text
    assert consent.json().get("analytics") is not True

    state = page.locator(".consent-state")
    await switch.check()
    await expect(state).to_have_text("Allowed · saved", timeout=WAIT_MS)
    assert (await server_get(app, "/v1/principals/alice/consent", "alice")).json()["analytics"]
    await reload(page)
    await expect(switch).to_be_checked(timeout=WAIT_MS)
    await expect(state).to_have_text("Allowed")
    await switch.uncheck()
    await expect(state).to_have_text("Not allowed · saved", timeout=WAIT_MS)
    consent = await server_get(app, "/v1/principals/alice/consent", "alice")
    assert consent.json()["analytics"] is False

    async with page.expect_download() as info:
        await page.get_by_role("button", name="Download my data").click()
    download = await info.value
    assert download.suggested_filename == "alice-data-export.zip"
    path = await download.path()
    assert path is not None
    data = await anyio.Path(path).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        contents = b"".join(archive.read(name) for name in archive.namelist())
    assert b"Exported entry" in contents
    await expect(page.get_by_role("status").filter(has_text="Downloaded")).to_be_visible()
    await no_horizontal_scroll(page)
    await assert_accessible(page, "the privacy page")
    await page.screenshot(path=artifact("privacy-phone.png"), full_page=True)


async def test_keyboard_and_axe_on_home_journal_sharing_privacy(app, users):
    """Issue 13: every control on Home, the journal, the sharing dialog and the privacy page is
    reached with Tab and shows its focus; axe-core finds no serious or critical violation."""
    from playwright.async_api import expect

    alice = await users("alice")
    page = alice.page
    await new_canvas(alice, "Mind map")
    await go_home(alice)
    await share(app, "alice/journal", {"bob": "editor"})
    bob = await users("bob")
    await expect(bob.page.locator(".shared-section .doc-card")).to_have_count(1, timeout=WAIT_MS)
    await tab_through(bob.page)
    await assert_accessible(bob.page, "Home (bob, with a shared journal)")
    await tab_through(page)
    await assert_accessible(page, "Home")
    await page.screenshot(path=artifact("home-desktop.png"))

    await page.get_by_role("link", name="My journal").click()
    await page.get_by_role("button", name="New entry").click()
    await page.get_by_label("Entry title").fill("Accessible")
    await page.get_by_label("Entry text").fill("Every control reachable.")
    await page.get_by_label("Add a tag").fill("a11y")
    await page.get_by_label("Add a tag").press("Enter")
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await tab_through(page)
    await assert_accessible(page, "the journal")

    await page.get_by_role("button", name="Share").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_text("bob", exact=True)).to_be_visible(timeout=WAIT_MS)
    await assert_accessible(page, "the sharing dialog", "dialog[open]")
    # The modal keeps Tab inside: every control of the dialog is reached.
    for _ in range(3):
        await page.keyboard.press("Tab")
        assert await page.evaluate("!!document.activeElement.closest('dialog[open]')")
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)

    await go_home(alice)
    await page.get_by_role("link", name="Privacy").first.click()
    await expect(page.get_by_role("switch", name="Analytics of my activity")).to_be_visible(
        timeout=WAIT_MS
    )
    await tab_through(page)
    await assert_accessible(page, "the privacy page")


async def test_phone_screens_home_journal_sharing(app, users):
    """Issue 13: at 390 by 844 every page of the shell fits (no sideways scroll) and its screenshot
    is in artifacts/e2e/: Home, the journal's list and editor, the sharing dialog."""
    from playwright.async_api import expect

    alice = await users("alice", **PHONE_OPTIONS)
    page = alice.page
    await new_canvas(alice, "Mind map")
    await go_home(alice)
    await page.get_by_role("button", name="New journal").click()
    await expect(page.get_by_label("Journal title")).to_have_value("New journal", timeout=WAIT_MS)
    await go_home(alice)
    await share(app, "carol/canvas-1", {"alice": "editor"})
    await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    await expect(page.locator(".shared-section .doc-card")).to_have_count(1, timeout=WAIT_MS)
    await no_horizontal_scroll(page)
    await page.screenshot(path=artifact("home-phone.png"), full_page=True)

    await page.get_by_role("link", name="My journal").click()
    for title, body in (
        ("Monday", "Rain on the window."),
        ("Tuesday", "A long walk by the river."),
    ):
        await page.get_by_role("button", name="New entry").click()
        await page.get_by_label("Entry title").fill(title)
        await page.get_by_label("Entry text").fill(body)
        await page.get_by_role("link", name="All entries").click()
    await expect(alice.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    await no_horizontal_scroll(page)
    await page.screenshot(path=artifact("journal-list-phone.png"))
    await page.locator(".entry-item", has_text="Tuesday").click()
    await page.get_by_label("Entry text").click()
    await no_horizontal_scroll(page)
    # The editor's top bar and title stay in view with the text field focused.
    box = await page.get_by_label("Entry text").bounding_box()
    assert box is not None and box["y"] < PHONE["height"] / 2
    await page.screenshot(path=artifact("journal-phone.png"))

    await page.get_by_role("button", name="Share").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_placeholder("Add a person by name").fill("bob")
    await dialog.get_by_role("button", name="Add").click()
    await expect(dialog.get_by_text("bob", exact=True)).to_be_visible()
    dialog_box = await dialog.bounding_box()
    assert dialog_box is not None and dialog_box["width"] <= PHONE["width"]
    await page.screenshot(path=artifact("sharing-phone.png"))


async def test_sign_in_and_missing_document_pages_on_a_phone(app, browser):
    """The sign-in page and the "no such document" page: keyboard, axe, and a phone screenshot."""
    from playwright.async_api import expect

    context = await browser.new_context(**PHONE_OPTIONS)
    try:
        page = await context.new_page()
        await load(page, f"{app.http}/")
        await expect(page.get_by_label("Your name")).to_be_focused()
        await tab_through(page)
        await assert_accessible(page, "the sign-in page")
        await no_horizontal_scroll(page)
        await page.screenshot(path=artifact("signin-phone.png"))

        await page.get_by_label("Your name").fill("dana")
        await page.get_by_label("Your name").press("Enter")  # the form submits from the keyboard
        await expect(page.get_by_role("heading", name="Canvases")).to_be_visible(timeout=WAIT_MS)
        await page.goto(f"{app.http}/#/journal/erin/journal-2")
        missing = page.get_by_role("heading", name="No journal called “erin/journal-2”")
        await expect(missing).to_be_visible(timeout=WAIT_MS)
        await expect(page.get_by_text("erin has not shared it with you")).to_be_visible()
        await tab_through(page)
        await assert_accessible(page, "the missing-document page")
        await no_horizontal_scroll(page)
        await page.screenshot(path=artifact("missing-document-phone.png"))
    finally:
        await context.close()
