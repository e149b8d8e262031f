"""The build hook that puts the built web app into the wheel (pyproject.toml holds the metadata).

A wheel of syncd carries ``pwa/dist`` as ``syncd/web/``, so ``syncd serve`` from an installed
package serves the app with no source checkout and no Node at run time, the way JupyterLab
ships its front end. Building a wheel (``pip install .``, ``pip wheel .``) therefore needs the
built app: an up-to-date ``pwa/dist`` is reused, otherwise this runs the pinned
``npm ci && npm run build`` in ``pwa/``. An editable install (``pip install -e .``, what
``scripts/test`` and ``scripts/serve`` do) never runs npm: ``syncd/app.py`` then serves
``pwa/dist`` of the checkout. An sdist carries the app's sources and its built copy, so a wheel
built from it needs no Node either. See docs/deployment.md, "The web app inside the package".

``SYNCD_WEB_APP_PREBUILT=1`` (for packagers who build the app in a step of their own) never
runs npm: ``pwa/dist`` is taken as it is, and a missing one is an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.errors import ExecError, FileError

ROOT = Path(__file__).resolve().parent
# Where the app lands inside the package; syncd/app.py looks here first.
PACKAGED = Path("syncd") / "web"
PREBUILT_ENV = "SYNCD_WEB_APP_PREBUILT"


def _sources(root: Path) -> list[Path]:
    """What the app's build reads: a dist older than any of these is stale (the same list as
    tests/support/browser.py's build_pwa, which builds under the same lock file)."""
    pwa = root / "pwa"
    return [
        pwa / "src",
        pwa / "public",
        pwa / "index.html",
        pwa / "vite.config.ts",
        pwa / "package-lock.json",
        root / "client-sdk" / "js" / "src",
    ]


def _newest(paths: list[Path]) -> float:
    newest = 0.0
    for base in paths:
        if base.is_file():
            newest = max(newest, base.stat().st_mtime)
        elif base.is_dir():
            newest = max([newest, *(p.stat().st_mtime for p in base.rglob("*") if p.is_file())])
    return newest


def _run(command: list[str], pwa: Path) -> None:
    print(f"syncd web app: {' '.join(command)} (in {pwa})", flush=True)
    proc = subprocess.run(command, cwd=pwa, check=False)
    if proc.returncode != 0:
        raise ExecError(f"`{' '.join(command)}` in {pwa} failed (exit {proc.returncode})")


def _build_web_app(pwa: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise ExecError(
            "building syncd's wheel builds its web app, which needs Node.js 20.19+ and npm "
            "(https://nodejs.org/). Install them, or build the app yourself "
            f"(npm ci && npm run build in pwa/) and set {PREBUILT_ENV}=1."
        )
    # npm ci empties node_modules first; skip it when the installed tree already matches the
    # lock file (npm writes node_modules/.package-lock.json), so that a build never pulls the
    # packages from under a test run or dev server using them.
    installed = pwa / "node_modules" / ".package-lock.json"
    lock = pwa / "package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        _run([npm, "ci", "--no-audit", "--no-fund"], pwa)
    _run([npm, "run", "build"], pwa)


def ensure_web_app(root: Path = ROOT) -> Path:
    """``pwa/dist`` of the tree at ``root``, built first when missing or older than its sources.

    Raises:
        FileError: ``SYNCD_WEB_APP_PREBUILT=1`` and there is no built app, or there are
            neither sources nor a built app (a tree without ``pwa/``).
        ExecError: npm is missing, or ``npm ci`` / ``npm run build`` failed.
    """
    pwa = root / "pwa"
    dist = pwa / "dist"
    index = dist / "index.html"
    if os.environ.get(PREBUILT_ENV) == "1":
        if not index.is_file():
            raise FileError(f"{PREBUILT_ENV}=1 but {dist} holds no built app (index.html)")
        return dist
    if not (pwa / "package.json").is_file():
        if index.is_file():
            return dist
        raise FileError(f"neither the web app's sources nor a built app in {pwa}")
    try:
        import fcntl
    except ImportError:  # Windows: no build running side by side to guard against
        fcntl = None
    # One build at a time, with the lock tests/support/browser.py takes: a wheel built while a
    # test session rebuilds the app must not pick up half of pwa/dist.
    with open(pwa / ".build.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        if not index.is_file() or index.stat().st_mtime < _newest(_sources(root)):
            _build_web_app(pwa)
        if not index.is_file():
            raise FileError(f"npm run build left no {index}")
    return dist


class BuildPyWithWebApp(build_py):
    """``build_py``, then the built web app copied to ``syncd/web/`` in the build tree."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            # pip install -e: the package is the source tree, which serves pwa/dist itself.
            return
        target = Path(self.build_lib) / PACKAGED
        # A previous build's copy may hold assets this build no longer has.
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(ensure_web_app(), target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        target = Path(self.build_lib) / PACKAGED
        if not self.editable_mode and target.is_dir():
            outputs += [str(p) for p in sorted(target.rglob("*")) if p.is_file()]
        return outputs


class SdistWithWebApp(sdist):
    """``sdist`` with an up-to-date built app (MANIFEST.in grafts ``pwa/dist`` beside the
    sources), so that installing from the sdist needs no Node."""

    def run(self) -> None:
        ensure_web_app()
        super().run()


if __name__ == "__main__":  # setuptools' build backend runs this file as __main__
    setup(cmdclass={"build_py": BuildPyWithWebApp, "sdist": SdistWithWebApp})
