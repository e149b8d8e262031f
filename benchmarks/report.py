"""The markdown tables: run metadata (machine, commit), the summary in the shape of issue 10
(rows = scenarios, columns = servers), and the detail of every figure."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
from servers import NODE_DIR, REPO


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
    with contextlib.suppress(OSError, ValueError):
        pinned = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
        for pkg in ("@hocuspocus/server", "@y/websocket-server", "yjs"):
            versions[pkg] = pinned[pkg]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        node = subprocess.run(["node", "--version"], capture_output=True, timeout=10, check=False)
        versions["node"] = node.stdout.decode().strip().lstrip("v")
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


def render_summary(results: dict[str, Any]) -> list[str]:
    """One row per scenario figure, one column per server: each scenario's ``_summary``."""
    servers: list[str] = results["servers"]
    labels = results.get("labels", {})
    lines = [
        "| scenario (p95 unless said) | " + " | ".join(labels.get(s, s) for s in servers) + " |",
        "|---|" + "---|" * len(servers),
    ]
    for sc in results["scenarios"]:
        rows: list[str] = []
        for s in servers:
            for row in sc["servers"].get(s, {}).get("_summary", {}):
                if row not in rows:
                    rows.append(row)
        for row in rows or [""]:
            cells = []
            for s in servers:
                figures = sc["servers"].get(s, {})
                cell = figures.get("_summary", {}).get(row)
                if cell is None:
                    cell = "failed" if "error" in figures else ""
                cells.append(str(cell).replace("|", "\\|"))
            lines.append(f"| {row or sc['title']} | " + " | ".join(cells) + " |")
    return lines


def render(results: dict[str, Any]) -> str:
    servers: list[str] = results["servers"]
    labels = results.get("labels", {})
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
        *render_summary(results),
        "",
        "Server CPU % is of one core; µs/delivery is server CPU time ÷ updates delivered to "
        "replicas. Detail:",
        "",
        "| scenario | figure | " + " | ".join(labels.get(s, s) for s in servers) + " |",
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
