"""Pages of the canvas for the browser tests (tests/test_pwa_canvas_e2e.py): opening, exporting,
typing into a text box, and reading back what is drawn. The signed-in users, the daemon and
``converge`` come from ``tests/support/pwa_users.py``."""

from __future__ import annotations

import io
from typing import Any

import anyio

from tests.support.pwa_users import WAIT_MS, User

__all__ = [
    "TWO_FRAMES",
    "export",
    "open_canvas",
    "pdf_text",
    "rendered_texts",
    "texts_of",
    "type_text_box",
]

# Resolves after two animation frames: whatever a change scheduled for the next frame is drawn.
TWO_FRAMES = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"


async def open_canvas(user: User, doc: str) -> None:
    from playwright.async_api import expect

    await user.page.goto(f"{user.origin}/#/canvas/{doc}")
    await expect(user.status()).to_have_attribute("data-status", "saved", timeout=WAIT_MS)


async def export(user: User, item: str) -> bytes:
    """Pick ``item`` among the exports (the Export menu, or "More actions" on a phone)."""
    page = user.page
    more = page.get_by_role("button", name="More actions")
    if await more.count():
        await more.click()
        target = page.get_by_role("button", name=item)
    else:
        await page.get_by_role("button", name="Export").click()
        target = page.get_by_role("menuitem", name=item)
    async with page.expect_download() as info:
        await target.click()
    download = await info.value
    path = await download.path()
    assert path is not None
    return await anyio.Path(path).read_bytes()


def pdf_text(data: bytes) -> tuple[str, int]:
    """The PDF's extracted text and how many raster images it holds (pypdf)."""
    from pypdf import PdfReader

    assert data.startswith(b"%PDF-"), data[:20]
    reader = PdfReader(io.BytesIO(data), strict=True)
    assert len(reader.pages) == 1
    page = reader.pages[0]
    return page.extract_text(), len(page.images)


async def rendered_texts(user: User) -> list[str]:
    """The text elements as the page draws them (SVG ``<text>``, one tspan per line)."""
    await user.page.evaluate(TWO_FRAMES)
    return await user.page.eval_on_selector_all(
        "[data-testid=canvas] [data-kind=text] text",
        """nodes => nodes.map((t) =>
          [...t.querySelectorAll('tspan')].map((s) => s.textContent).join('\\n'))""",
    )


async def type_text_box(user: User, at: tuple[float, float], text: str, delay_ms: float) -> None:
    """Text tool, a tap on the canvas, the keys one by one (``delay_ms`` apart), Escape."""
    from playwright.async_api import expect

    page = user.page
    await page.get_by_role("button", name="Text (T)").click()
    box = await page.get_by_test_id("canvas").bounding_box()
    await page.mouse.click(box["x"] + at[0], box["y"] + at[1])
    editor = page.get_by_label("Edit text")
    await expect(editor).to_be_focused()
    await page.keyboard.type(text, delay=delay_ms)
    await expect(editor).to_have_value(text)
    await page.keyboard.press("Escape")
    await expect(editor).to_have_count(0)


def texts_of(state: dict[str, Any]) -> list[str]:
    return sorted(e["text"] for e in state["elements"].values() if e["kind"] == "text")
