"""Signed-in browser users of the PWA for the browser tests (tests/test_pwa_*_e2e.py).

A daemon with the dev login serving the built app; each user in their own browser context behind
their own loopback proxy (offline is real: the proxy is cut), with the page's uncaught errors
(which fail the test) and console errors (which a test may assert on) collected. Helpers read
what the server holds through the HTTP API, and check a page's keyboard reachability.

A test module binds the fixtures into its own namespace (``users = pwa_users.users``), so
that pytest finds them.
"""

from __future__ import annotations

import fcntl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import httpx
import pytest

from tests.support.browser import CHROMIUM_ARGS, PWA, build_pwa, require_browser
from tests.support.servers import RunningDaemon, start_daemon
from tests.support.tcp_proxy import TcpProxy

__all__ = [
    "DESKTOP",
    "PHONE",
    "PHONE_OPTIONS",
    "WAIT_MS",
    "User",
    "app",
    "auth",
    "browser",
    "chromium",
    "converge",
    "doc_json",
    "go_home",
    "load",
    "new_canvas",
    "no_horizontal_scroll",
    "reload",
    "server_get",
    "server_json",
    "share",
    "tab_through",
    "users",
]

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


@asynccontextmanager
async def dist_unchanged() -> AsyncIterator[None]:
    """Hold off other test sessions' rebuilds of ``pwa/dist`` (``build_pwa`` takes this lock
    exclusively) while the app's files are served: a page loaded while another session's vite
    empties ``dist`` gets "Not Found" (seen with several engineers running tests side by side)."""
    with open(PWA / ".build.lock", "a") as lock:  # noqa: ASYNC230 (an empty lock file)
        await anyio.to_thread.run_sync(fcntl.flock, lock, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


async def load(page: Any, url: str) -> None:
    """``page.goto(url)`` for a URL that fetches the app (not only a new ``#`` route)."""
    async with dist_unchanged():
        await page.goto(url)
        await page.wait_for_load_state("load")


async def reload(page: Any) -> None:
    async with dist_unchanged():
        await page.reload()
        await page.wait_for_load_state("load")


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = require_browser()
    build_pwa()
    return exe


@pytest.fixture
async def app(settings, chromium) -> AsyncIterator[RunningDaemon]:
    async with dist_unchanged():  # it serves the app only if pwa/dist/index.html is there
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
        await load(page, f"{user.origin}/")
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


# The document's JSON as the page's SDK sees it (journal/1 or canvas/1).
DOC_JSON = """(name) => {
  const doc = window.syncd.client.documents.get(name)
  if (!doc) return null
  const schema = doc.ydoc.getMap('meta').get('schema')
  return schema === 'journal/1' ? doc.journal().toJSON() : doc.canvas().toJSON()
}"""


async def doc_json(user: User, name: str) -> Any:
    """What the page's SDK holds of document ``name`` (``None`` before it is open)."""
    return await user.page.evaluate(DOC_JSON, name)


async def converge(app: RunningDaemon, doc: str, *people: User) -> dict[str, Any]:
    """Wait until every page holds exactly the server's document; return it."""
    from playwright.async_api import expect

    for user in people:
        await expect(user.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)
    expected = await server_json(app, doc)
    for user in people:
        await user.page.wait_for_function(
            f"""([name, expected]) =>
              JSON.stringify(({DOC_JSON})(name)) === JSON.stringify(expected)""",
            arg=[doc, expected],
            timeout=WAIT_MS,
        )
    return expected


def auth(app: RunningDaemon, sub: str) -> dict[str, str]:
    return {"authorization": f"Bearer {app.token(sub)}"}


async def server_get(app: RunningDaemon, path: str, sub: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=app.http) as http:
        return await http.get(path, headers={**auth(app, sub), **kw.pop("headers", {})}, **kw)


async def server_json(app: RunningDaemon, doc: str) -> dict[str, Any]:
    r = await server_get(
        app, f"/v1/docs/{doc}/state", doc.split("/")[0], headers={"accept": "application/json"}
    )
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


# Every focusable control of the page that is visible, and whether the one focused now shows it.
FOCUSABLES = """() => [...document.querySelectorAll(
    'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), '
    + 'textarea:not([disabled]), [tabindex]:not([tabindex="-1"])')]
  .filter((el) => el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden'
    && !el.closest('dialog:not([open])'))
  .map((el) => el.outerHTML.slice(0, 120))"""
FOCUSED = """() => {
  const el = document.activeElement
  if (!el || el === document.body) return null
  const style = getComputedStyle(el)
  const outlined = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2
  return { html: el.outerHTML.slice(0, 120), visible: outlined || style.boxShadow !== 'none' }
}"""


async def tab_through(page: Any) -> None:
    """Tab from the top of the page: every control is reached, each with a visible focus."""
    expected = set(await page.evaluate(FOCUSABLES))
    reached: set[str] = set()
    await page.evaluate("document.activeElement?.blur()")
    for _ in range(len(expected) + 5):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUSED)
        if focused is None:
            continue
        assert focused["visible"], f"no visible focus on {focused['html']}"
        reached.add(focused["html"])
    missing = expected - reached
    assert not missing, f"not reachable with Tab: {sorted(missing)}"
