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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import httpx
import pytest

from tests.support.axe import assert_accessible
from tests.support.browser import CHROMIUM_ARGS, artifact, build_pwa, require_browser
from tests.support.servers import RunningDaemon, start_daemon
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.anyio, pytest.mark.node, pytest.mark.slow]

WAIT_MS = 15_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PHONE_OPTIONS = {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


@dataclass
class User:
    name: str
    context: Any
    page: Any
    proxy: TcpProxy
    errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    async def offline(self) -> None:
        await self.context.set_offline(True)
        self.proxy.disconnect()

    async def online(self) -> None:
        self.proxy.restore()
        await self.context.set_offline(False)

    def status(self) -> Any:
        return self.page.locator(".topbar [data-status]").first


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = require_browser()
    build_pwa()
    return exe


@pytest.fixture
async def app(settings, chromium) -> AsyncIterator[RunningDaemon]:
    running = await start_daemon(replace(settings, dev_login=True))
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def browser(chromium) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
async def users(app, browser) -> AsyncIterator[Any]:
    """``await users("alice")``: a signed-in user on Home, in their own browser context."""
    from playwright.async_api import expect

    made: list[User] = []

    async def make(name: str, **options: Any) -> User:
        proxy = await TcpProxy("127.0.0.1", app.port).start()
        options.setdefault("viewport", DESKTOP)
        context = await browser.new_context(accept_downloads=True, **options)
        page = await context.new_page()
        user = User(name, context, page, proxy)
        page.on("pageerror", lambda exc: user.errors.append(str(exc)))
        page.on(
            "console",
            lambda msg: user.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        made.append(user)
        await page.goto(f"{user.origin}/")
        await page.get_by_label("Your name").fill(name)
        await page.get_by_role("button", name="Continue").click()
        await expect(page.get_by_role("heading", name="Canvases")).to_be_visible()
        return user

    yield make
    for user in made:
        await user.context.close()
        await user.proxy.stop()
    errors = {u.name: u.errors for u in made if u.errors}
    assert not errors, f"uncaught errors in the pages: {errors}"


def auth(app: RunningDaemon, sub: str) -> dict[str, str]:
    return {"authorization": f"Bearer {app.token(sub)}"}


async def server_get(app: RunningDaemon, path: str, sub: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=app.http) as http:
        return await http.get(path, headers={**auth(app, sub), **kw.pop("headers", {})}, **kw)


async def server_json(app: RunningDaemon, doc: str) -> dict[str, Any]:
    r = await server_get(app, f"/v1/docs/{doc}/state", doc.split("/")[0],
                         headers={"accept": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()


async def share(app: RunningDaemon, doc: str, grants: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=app.http) as http:
        r = await http.put(
            f"/v1/docs/{doc}/access",
            json={"mode": "shared", "grants": grants},
            headers=auth(app, doc.split("/")[0]),
        )
    assert r.status_code == 200, r.text


async def new_canvas(user: User, template: str = "Blank") -> str:
    from playwright.async_api import expect

    page = user.page
    await page.get_by_role("button", name="New canvas").click()
    await page.get_by_role("button", name=template).first.click()
    await expect(page.get_by_test_id("canvas")).to_be_visible()
    await expect(user.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    return page.url.split("#/canvas/")[1]


async def go_home(user: User) -> None:
    from playwright.async_api import expect

    await user.page.goto(f"{user.origin}/#/")
    await expect(user.page.get_by_role("heading", name="Canvases")).to_be_visible()


async def no_horizontal_scroll(page: Any) -> None:
    width = await page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width} px in {PHONE['width']}"


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

    # Asked for: created.
    await page.goto(f"{bob.origin}/#/canvas/bob/canvas-tpyo")
    await page.get_by_role("button", name="Create a new canvas called “canvas-tpyo”").click()
    await expect(page.get_by_test_id("canvas")).to_be_visible()
    await expect(bob.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
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
