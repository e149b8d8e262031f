"""Web Push in the web app, in headless Chromium (issue 13 acceptance 3).

Chromium's own push service is out of reach here, so the page's ``PushManager.subscribe`` is
stubbed with a subscription whose keys the test made (pointing at the push service stand-in);
everything else is real: the "Notify me" switch asks for permission on its tap, fetches the
daemon's key, posts the subscription (the daemon stores it); the service worker's ``push``
handler shows the notification (``registration.getNotifications()``) and its
``notificationclick`` handler opens the document in the app's window.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from crdt.schemas import Canvas
from tests.support import pwa_users
from tests.support.browser import artifact
from tests.support.push_service import BrowserKeys, PushServiceStandIn, unb64url
from tests.support.pwa_users import WAIT_MS, auth, share
from tests.support.servers import RunningDaemon

pytestmark = [pytest.mark.anyio, pytest.mark.node, pytest.mark.slow]

DOC = "alice/canvas-trip"

# Replaces the browser's push subscription in the page (not in the service worker).
STUB_SUBSCRIBE = """
(() => {
  const json = %s
  let current = null
  window.__pushSubscribeCalls = []
  window.__permissionAsked = 0
  const ask = Notification.requestPermission.bind(Notification)
  Notification.requestPermission = (...args) => { window.__permissionAsked++; return ask(...args) }
  PushManager.prototype.subscribe = async function (options) {
    const key = options && options.applicationServerKey
    window.__pushSubscribeCalls.push(key ? Array.from(new Uint8Array(key)) : null)
    current = {
      endpoint: json.endpoint,
      expirationTime: null,
      options: { userVisibleOnly: true, applicationServerKey: key ? key.buffer : null },
      toJSON: () => json,
      unsubscribe: async () => { current = null; return true }
    }
    return current
  }
  PushManager.prototype.getSubscription = async function () { return current }
})()
"""

# Dispatches an event in the service worker and waits for what its handler gave waitUntil.
DISPATCH = """async ([kind, payload]) => {
  const pending = []
  let event
  if (kind === 'push') {
    event = new PushEvent('push', { data: JSON.stringify(payload) })
  } else {
    const [notification] = await self.registration.getNotifications()
    event = new NotificationEvent('notificationclick', { notification })
  }
  event.waitUntil = (promise) => { pending.push(promise) }
  self.dispatchEvent(event)
  await Promise.all(pending)
  return pending.length
}"""

NOTIFICATIONS = """async () => (await self.registration.getNotifications()).map(
  (n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }))"""


@pytest.fixture
async def push_service() -> AsyncIterator[PushServiceStandIn]:
    service = await PushServiceStandIn().start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
def settings(settings, push_service):  # conftest's, with the stand-in admitted
    return replace(settings, push_allow_endpoints=f"{push_service.origin}/push/")


# The daemon serving the app and the browser (tests/support/pwa_users.py).
app, browser, chromium = pwa_users.app, pwa_users.browser, pwa_users.chromium


async def make_shared_canvas(app: RunningDaemon) -> None:
    canvas = Canvas.create("Trip", author="alice")
    canvas.add_text("pack the tent", 40, 40)
    async with httpx.AsyncClient(base_url=app.http) as http:
        r = await http.post(
            f"/v1/docs/{DOC}/updates", content=canvas.doc.get_update(), headers=auth(app, "alice")
        )
        assert r.status_code == 200, r.text
    await share(app, DOC, {"bob": "editor"})


async def test_notify_switch_subscribes_and_a_push_opens_the_document(
    app: RunningDaemon, browser: Any, push_service: PushServiceStandIn
) -> None:
    from playwright.async_api import expect

    await make_shared_canvas(app)
    keys = BrowserKeys()
    subscription = keys.subscription(push_service.endpoint("bob-chromium"))
    origin = app.http
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    try:
        await context.grant_permissions(["notifications"], origin=origin)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.add_init_script(STUB_SUBSCRIBE % json.dumps(subscription))
        await page.goto(f"{origin}/")
        await page.get_by_label("Your name").fill("bob")
        await page.get_by_role("button", name="Continue").click()
        await expect(page.get_by_role("heading", name="Canvases")).to_be_visible()
        # The service worker controls the page (clients.claim) before anything else.
        await page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=WAIT_MS)
        worker = context.service_workers[0]

        switch = page.get_by_role("switch", name="Notify me")
        await expect(switch).to_have_attribute("aria-checked", "false", timeout=WAIT_MS)
        # Nothing is asked before the tap (iOS allows a permission prompt only in a gesture).
        assert await page.evaluate(
            "[window.__permissionAsked, window.__pushSubscribeCalls.length]"
        ) == [0, 0]
        await switch.click()
        await expect(switch).to_have_attribute("aria-checked", "true", timeout=WAIT_MS)
        assert await page.evaluate("window.__permissionAsked") == 1
        calls = await page.evaluate("window.__pushSubscribeCalls")
        assert bytes(calls[0]) == unb64url(app.daemon.push.vapid.public_key)
        stored = await app.daemon.push.subscriptions.of_principals("default", ["bob"])
        assert [(s.endpoint, s.p256dh) for s in stored] == [(subscription["endpoint"], keys.p256dh)]

        payload = {
            "type": "shared",
            "doc": DOC,
            "by": "alice",
            "role": "editor",
            "url": f"/#/canvas/{DOC}",
        }
        assert await worker.evaluate(DISPATCH, ["push", payload]) == 1
        shown = await worker.evaluate(NOTIFICATIONS)
        assert len(shown) == 1
        assert shown[0]["title"] == "alice shared “canvas-trip” with you"
        assert shown[0]["data"] == {"url": f"/#/canvas/{DOC}"}
        assert shown[0]["tag"] == DOC

        assert await worker.evaluate(DISPATCH, ["notificationclick", None]) == 1
        await page.wait_for_url(f"**/#/canvas/{DOC}", timeout=WAIT_MS)
        await expect(page.get_by_test_id("canvas")).to_be_visible(timeout=WAIT_MS)
        assert await worker.evaluate(NOTIFICATIONS) == []  # the click closed it
        await page.screenshot(path=artifact("push-opened-canvas.png"))

        # Turning it off deletes the daemon's copy.
        await page.evaluate("window.location.hash = '#/'")  # the same page: the stub lives on
        switch = page.get_by_role("switch", name="Notify me")
        await expect(switch).to_have_attribute("aria-checked", "true", timeout=WAIT_MS)
        await switch.click()
        await expect(switch).to_have_attribute("aria-checked", "false", timeout=WAIT_MS)
        assert await app.daemon.push.subscriptions.of_principals("default", ["bob"]) == []
    finally:
        await context.close()
    assert not errors, errors
