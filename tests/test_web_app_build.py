"""setup.py's build hook decides when to run npm, on scratch trees (issue 13).

The hook's ``ensure_web_app`` runs against a tree made here, with a stand-in ``npm`` on ``PATH``
that records how it was called (a real npm build is what tests/test_wheel.py exercises): a
current ``pwa/dist`` is reused, a stale one is rebuilt, a missing npm is a clear error, and
``SYNCD_WEB_APP_PREBUILT=1`` never runs npm. Also: the daemon prefers the app in its package.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

import syncd.app

ROOT = Path(__file__).resolve().parent.parent
OLD, NEW = 1_700_000_000, 1_800_000_000  # file times set explicitly: no waiting for a clock

# Records its arguments; `npm run build` writes the app as vite would.
FAKE_NPM = """#!/bin/sh
echo "$*" >> "$NPM_LOG"
if [ "$1" = run ]; then mkdir -p dist && echo built > dist/index.html; fi
"""


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    # Imported under another name than __main__, so setup() itself does not run.
    spec = importlib.util.spec_from_file_location("syncd_build_hook", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def touch(path: Path, when: int, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (when, when))
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A checkout's shape: the app's sources (old) and the SDK it imports."""
    root = tmp_path / "checkout"
    touch(root / "pwa" / "package.json", OLD, "{}")
    touch(root / "pwa" / "package-lock.json", OLD, "{}")
    touch(root / "pwa" / "src" / "main.tsx", OLD)
    touch(root / "client-sdk" / "js" / "src" / "index.js", OLD)
    return root


@pytest.fixture
def npm_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM)
    npm.chmod(0o755)
    log = tmp_path / "npm.log"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("NPM_LOG", str(log))
    monkeypatch.delenv("SYNCD_WEB_APP_PREBUILT", raising=False)
    return log


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_a_current_build_is_reused(hook: ModuleType, tree: Path, npm_log: Path) -> None:
    touch(tree / "pwa" / "dist" / "index.html", NEW, "prebuilt")
    assert hook.ensure_web_app(tree) == tree / "pwa" / "dist"
    assert calls(npm_log) == []
    assert (tree / "pwa" / "dist" / "index.html").read_text() == "prebuilt"


def test_a_stale_build_is_rebuilt_with_npm_ci_first(
    hook: ModuleType, tree: Path, npm_log: Path
) -> None:
    touch(tree / "pwa" / "dist" / "index.html", OLD - 10, "stale")
    touch(tree / "client-sdk" / "js" / "src" / "index.js", NEW)  # the SDK counts as a source
    hook.ensure_web_app(tree)
    assert calls(npm_log) == ["ci --no-audit --no-fund", "run build"]
    assert (tree / "pwa" / "dist" / "index.html").read_text().strip() == "built"


def test_installed_packages_matching_the_lock_are_kept(
    hook: ModuleType, tree: Path, npm_log: Path
) -> None:
    touch(tree / "pwa" / "node_modules" / ".package-lock.json", NEW, "{}")
    hook.ensure_web_app(tree)  # no dist at all
    assert calls(npm_log) == ["run build"]


def test_without_npm_the_error_says_what_to_do(
    hook: ModuleType, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-node"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("SYNCD_WEB_APP_PREBUILT", raising=False)
    with pytest.raises(hook.ExecError) as refused:
        hook.ensure_web_app(tree)
    assert "Node.js" in str(refused.value)
    assert "SYNCD_WEB_APP_PREBUILT=1" in str(refused.value)


def test_prebuilt_never_runs_npm(
    hook: ModuleType, tree: Path, npm_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_WEB_APP_PREBUILT", "1")
    with pytest.raises(hook.FileError):
        hook.ensure_web_app(tree)
    touch(tree / "pwa" / "dist" / "index.html", OLD - 10, "older than its sources")
    assert hook.ensure_web_app(tree) == tree / "pwa" / "dist"
    assert calls(npm_log) == []


def test_the_daemon_prefers_the_app_in_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged, checkout = tmp_path / "site-packages" / "syncd" / "web", tmp_path / "pwa" / "dist"
    monkeypatch.setattr(syncd.app, "PACKAGED_WEB_APP", packaged)
    monkeypatch.setattr(syncd.app, "PWA_DIST", checkout)
    assert syncd.app.web_app_dir() is None
    touch(checkout / "index.html", NEW)
    assert syncd.app.web_app_dir() == checkout
    touch(packaged / "index.html", NEW)
    assert syncd.app.web_app_dir() == packaged
