"""The installed package carries the web app (issue 13, acceptance 4).

The wheel is built from this checkout (its build hook reuses the ``pwa/dist`` that
``build_pwa()`` just made current), installed with its pinned dependencies into a fresh venv,
and that venv's ``syncd serve`` runs from an empty directory with a clean environment: nothing
of the checkout is on its path, and no Node either. It must serve the app at ``/``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import ROOT, build_pwa
from tests.support.servers import SECRET, free_port

pytestmark = pytest.mark.slow

# The built index names its hashed bundles (vite: ./assets/index-HASH.js).
ASSET = re.compile(r"""(?:src|href)="\./(assets/[^"]+\.(?:js|css))\"""")


def run(*command: str | Path, cwd: Path, timeout: float, env: dict | None = None) -> str:
    argv = [str(c) for c in command]
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{command} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_pwa()
    out = tmp_path_factory.mktemp("wheelhouse")
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet")
    run(*pip, "wheel", ".", "--no-deps", "-w", out, cwd=ROOT, timeout=300)
    (built,) = out.glob("syncd-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with the wheel and its pinned dependencies."""
    home = tmp_path_factory.mktemp("venv") / "venv"
    # Without a pip of its own (seeding one costs seconds): this pip installs into it.
    run(sys.executable, "-m", "venv", "--without-pip", home, cwd=home.parent, timeout=120)
    pip = (sys.executable, "-m", "pip", "--python", home / "bin" / "python", "--quiet")
    options = ("--disable-pip-version-check", "--prefer-binary", "--no-compile")
    constraints = ROOT / "requirements.lock"
    run(*pip, "install", *options, "-c", constraints, wheel, cwd=home.parent, timeout=300)
    return home


def clean_env(venv: Path) -> dict[str, str]:
    """No PYTHONPATH, no other venv, and a PATH of the venv alone (so no node, no npm)."""
    dropped = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("SYNCD_")}
    env["PATH"] = str(venv / "bin")
    return env


@pytest.fixture
def served(venv: Path, tmp_path: Path) -> Iterator[str]:
    """That venv's ``syncd serve`` on a free port, run from an empty directory."""
    port = free_port()
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = clean_env(venv) | {"SYNCD_SECRET": SECRET}
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [venv / "bin" / "syncd", "serve", "--port", str(port), "--data-dir", workdir / ".syncd"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # the child's readiness is only observable by asking it
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def fetch(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200, url
        return answer.headers["Content-Type"], answer.read()


def test_the_wheel_holds_the_built_app(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        index = archive.read("syncd/web/index.html").decode()
    assert {"syncd/web/manifest.webmanifest", "syncd/web/sw.js"} <= names
    assets = ASSET.findall(index)
    assert assets, index
    assert all(f"syncd/web/{asset}" in names for asset in assets)
    assert not any(name.startswith(("pwa/", "node_modules/")) for name in names)


def test_installed_package_serves_the_app(venv: Path, served: str) -> None:
    # What the venv imports is its own copy, not this checkout.
    python = venv / "bin" / "python"
    where = run(
        python,
        "-c",
        "import syncd; print(syncd.__file__)",
        cwd=venv.parent,
        timeout=30,
        env=clean_env(venv),
    )
    assert Path(where.strip()).is_relative_to(venv), where

    content_type, body = fetch(f"{served}/")
    index = body.decode()
    assert content_type.startswith("text/html")
    assert "not built yet" not in index
    assert 'rel="manifest"' in index
    assets = ASSET.findall(index)
    assert any(a.endswith(".js") for a in assets), index
    for asset in assets:
        content_type, body = fetch(f"{served}/{asset}")
        expected = "text/javascript" if asset.endswith(".js") else "text/css"
        assert content_type.startswith(expected), (asset, content_type)
        assert body

    content_type, body = fetch(f"{served}/manifest.webmanifest")
    assert content_type.startswith("application/manifest+json")
    manifest = json.loads(body)
    assert manifest["name"] and manifest["start_url"]

    content_type, body = fetch(f"{served}/sw.js")
    assert content_type.startswith("text/javascript")
    worker = body.decode()
    # The worker precaches exactly this build: its shell lists the bundles the index loads.
    assert all(f"./{asset}" in worker for asset in assets), worker[:500]
