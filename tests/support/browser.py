"""Headless Chromium for the end-to-end tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

Playwright never downloads a browser here: it launches the system Chromium (``apt-get install
chromium``) through ``executable_path``. The PWA is built into ``pwa/dist`` when missing or older
than its sources. Missing pieces fail the test with what to install, never skip it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PWA = ROOT / "pwa"
DIST = PWA / "dist"
SDK_SRC = ROOT / "client-sdk" / "js" / "src"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = os.environ.get("SYNCD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> str:
    """The Chromium executable, once Playwright (the Python package) is importable."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.fail(
            "the end-to-end tests need the Python package playwright: pip install playwright "
            "(never `playwright install`: they use Debian's chromium)",
            pytrace=False,
        )
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"the end-to-end tests need Chromium at {CHROMIUM}: apt-get install -y chromium",
            pytrace=False,
        )
    return CHROMIUM


def _newest(paths: list[Path]) -> float:
    newest = 0.0
    for base in paths:
        files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()]
        newest = max([newest, *(p.stat().st_mtime for p in files)])
    return newest


def build_pwa() -> Path:
    """Build ``pwa/dist`` (``npm run build``) unless it is newer than every source file."""
    if shutil.which("npm") is None or not (PWA / "node_modules" / "vite").is_dir():
        pytest.fail(
            "the end-to-end tests need Node.js 20.19+ and the PWA's packages: "
            "run npm ci --prefix pwa",
            pytrace=False,
        )
    sources = [
        PWA / "src", PWA / "public", PWA / "index.html", PWA / "vite.config.ts",
        PWA / "package-lock.json", SDK_SRC,
    ]
    # One build at a time: test sessions running side by side would otherwise write pwa/dist
    # together and serve each other half a build.
    with open(PWA / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        index = DIST / "index.html"
        if index.exists() and index.stat().st_mtime >= _newest(sources):
            return DIST
        proc = subprocess.run(
            ["npm", "run", "build", "--prefix", str(PWA)],
            capture_output=True, text=True, timeout=600, check=False,
        )
    if proc.returncode != 0:
        output = f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        pytest.fail(f"npm run build --prefix pwa failed:\n{output}")
    return DIST


def artifact(name: str) -> Path:
    """Where a screenshot goes: ``artifacts/e2e/NAME`` (gitignored)."""
    path = ARTIFACTS / "e2e" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
