"""The README's Python SDK example runs as written (issue 13).

The script and the shell lines are taken from README.md's "Python SDK" section, not copied
here: the token is minted by the command the README gives, the script runs in a process of its
own against a live daemon, and what it wrote is read back from the server.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
from pathlib import Path

import httpx
import pytest
from pycrdt import Doc

from crdt.schemas import Journal
from tests.support.servers import SECRET, RunningDaemon

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
README_URL = "ws://127.0.0.1:8787"


def sdk_section() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Python SDK\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README.md has no '## Python SDK' section"
    return match.group(1)


def code_block(section: str, language: str) -> str:
    match = re.search(rf"^```{language}\n(.*?)^```", section, re.S | re.M)
    assert match, f"no {language} block in the README's Python SDK section"
    return match.group(1)


def token_command(shell: str) -> list[str]:
    """The command inside ``export SYNCD_TOKEN="$(…)"``, with ``.venv/bin/`` made absolute."""
    match = re.search(r'^export SYNCD_TOKEN="\$\((.+?)\)"', shell, re.M)
    assert match, shell
    argv = shlex.split(match.group(1))
    assert argv[0] == ".venv/bin/syncd", argv
    return [str(Path(sys.executable).parent / "syncd"), *argv[1:]]


async def output_of(*argv: str, cwd: Path, env: dict[str, str]) -> str:
    # A subprocess of its own, awaited: the daemon serving it runs on this event loop.
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{out.decode()}{err.decode()}"
    return out.decode()


async def test_python_sdk_example_runs_as_written(daemon: RunningDaemon, tmp_path: Path) -> None:
    section = sdk_section()
    script = code_block(section, "python")
    assert README_URL in script
    (tmp_path / "journal.py").write_text(
        script.replace(README_URL, f"ws://127.0.0.1:{daemon.port}")
    )

    # The daemon under test signs with SECRET; `syncd token` reads the same key from the
    # environment, as it would read the one ./scripts/serve keeps in ./.syncd.
    env = {"PATH": str(Path(sys.executable).parent), "SYNCD_SECRET": SECRET}
    token = await output_of(*token_command(code_block(section, "sh")), cwd=tmp_path, env=env)
    token = token.strip()
    assert token.count(".") == 2, token  # one JWT alone on its line

    await output_of(sys.executable, "journal.py", cwd=tmp_path, env=env | {"SYNCD_TOKEN": token})
    assert (tmp_path / "offline.db").is_file()

    async with httpx.AsyncClient(base_url=daemon.http) as http:
        answer = await http.get(
            "/v1/docs/alice/journal/state", headers={"Authorization": f"Bearer {token}"}
        )
        # A journal the server recognises: its JSON view is served (406 without meta.schema).
        view = await http.get(
            "/v1/docs/alice/journal/state",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
    assert answer.status_code == 200, answer.text
    doc = Doc()
    doc.apply_update(answer.content)
    entries = Journal(doc).entries()
    assert [(e["title"], e["body"]) for e in entries] == [("Monday", "written on the train")]
    assert view.status_code == 200, view.text
    assert view.json()["meta"]["title"] == "My journal"
