"""axe-core in the browser tests: inject ``axe.min.js`` (pwa/node_modules), run ``axe.run()``.

Usage from an async Playwright test::

    from tests.support.axe import assert_accessible
    await assert_accessible(page, "home")               # the whole page
    await assert_accessible(page, "share", ".dialog")   # only inside one element

``assert_accessible`` fails with a readable list of every ``serious`` or ``critical`` violation
(rule, help text, the offending elements' selectors and HTML). ``axe_violations`` returns the raw
violations for a test that wants to judge them itself.

axe is injected with ``page.add_script_tag(content=...)`` rather than from a URL, so that it runs
even when the page is offline and needs no route on the daemon. Animations and transitions are
settled by the caller (wait for the element under test to be visible): axe measures contrast on
what is painted, and a half-faded dialog reports false contrast failures.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

AXE_JS = (
    Path(__file__).resolve().parent.parent.parent
    / "pwa"
    / "node_modules"
    / "axe-core"
    / "axe.min.js"
)
SEVERE = ("serious", "critical")

# WCAG 2.0/2.1 A and AA plus axe's best practices: the level the issue asks for ("contrast,
# labels for screen readers"). Best-practice rules such as "region" only report moderate impact,
# so they never fail a test on their own; they appear in the message when something else does.
RUN_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}


@cache
def _axe_source() -> str:
    if not AXE_JS.exists():
        pytest.fail(
            f"the accessibility check needs axe-core at {AXE_JS}: run npm ci --prefix pwa",
            pytrace=False,
        )
    return AXE_JS.read_text(encoding="utf-8")


async def axe_violations(page: Any, within: str | None = None) -> list[dict[str, Any]]:
    """Every axe violation on ``page`` (or inside the first element matching ``within``)."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.add_script_tag(content=_axe_source())
    return await page.evaluate(
        """async ([within, options]) => {
          const context = within ? document.querySelector(within) : document
          if (!context) throw new Error(`axe: nothing matches ${within}`)
          const result = await window.axe.run(context, options)
          return result.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
            nodes: v.nodes.map((n) => ({
              target: n.target.join(' '), html: n.html.slice(0, 200),
              summary: n.failureSummary,
            })),
          }))
        }""",
        [within, RUN_OPTIONS],
    )


def describe(violations: list[dict[str, Any]]) -> str:
    """A violation list as text a person can act on."""
    lines = []
    for v in violations:
        lines.append(f"- [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:5]:
            lines.append(f"    {node['target']}: {node['html']}")
            if node.get("summary"):
                lines.append("      " + node["summary"].replace("\n", "\n      "))
    return "\n".join(lines)


async def assert_accessible(page: Any, label: str, within: str | None = None) -> None:
    """Fail when axe finds a ``serious`` or ``critical`` violation; ``label`` names the view."""
    violations = await axe_violations(page, within)
    severe = [v for v in violations if v["impact"] in SEVERE]
    assert not severe, f"axe found serious/critical violations on {label}:\n{describe(severe)}"
