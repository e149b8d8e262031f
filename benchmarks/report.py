"""The markdown table: run metadata (machine, commit) and the rendering of every figure."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
from servers import REPO


def machine() -> dict[str, str]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for pkg in ("pycrdt", "pycrdt-websocket", "websockets", "uvicorn", "uvloop"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    return {
        "cpu": f"{cpu} x {os.cpu_count()} cores",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "uncommitted"
    commit = out.stdout.decode().strip()
    return commit if out.returncode == 0 and commit else "uncommitted"


def render(results: dict[str, Any]) -> str:
    servers: list[str] = results["servers"]
    meta = results["meta"]
    lines = [
        f"### {meta['date']} — syncd commit `{meta['commit']}`"
        + (" (--quick)" if meta["quick"] else ""),
        "",
        f"Machine: {meta['machine']['cpu']}, {meta['machine']['memory']}, "
        f"{meta['machine']['os']}, Python {meta['machine']['python']}; "
        f"{meta['machine']['packages']}. Load generator: {meta['workers']} process(es); "
        f"measurement {meta['duration']:.0f}s per scenario.",
        "",
        "| scenario | figure | " + " | ".join(servers) + " |",
        "|---|---|" + "---|" * len(servers),
    ]
    for sc in results["scenarios"]:
        per_server = sc["servers"]
        keys: list[str] = []
        for s in servers:
            for k in per_server.get(s, {}):
                if not k.startswith("_") and k not in keys:
                    keys.append(k)
        for i, key in enumerate(keys):
            label = f"{sc['number']}. {sc['title']}" if i == 0 else ""
            cells = []
            for s in servers:
                value = per_server.get(s, {}).get(key, "")
                cells.append(str(value).replace("|", "\\|"))
            lines.append(f"| {label} | {key} | " + " | ".join(cells) + " |")
    notes = []
    for sc in results["scenarios"]:
        for s in servers:
            details = sc["servers"].get(s, {}).get("_details")
            if details and (details.get("log") or details.get("client_errors")):
                notes.append(
                    f"- {sc['number']}. {s}: "
                    + "; ".join(
                        [*details.get("log", [])[:3], *details.get("client_errors", [])[:3]]
                    )
                )
    if notes:
        lines += ["", "Problems seen (first lines):", *notes]
    skipped = results.get("skipped")
    if skipped:
        lines += ["", *(f"- {name}: not run — {why}" for name, why in skipped.items())]
    return "\n".join(lines)
