"""The ``purpose`` claim of service tokens (DESIGN.md §1.11): minted, verified, refused when
malformed, and printed by ``syncd token --purpose``."""

from __future__ import annotations

import subprocess
import sys
import time

import jwt
import pytest

from syncd.tokens import InvalidToken, Role, TokenKeys
from tests.support.servers import SECRET


def test_minted_purpose_is_verified():
    keys = TokenKeys(secret=SECRET)
    identity = keys.verify(keys.mint("insights", role="service", purpose="analytics"))
    assert (identity.sub, identity.role, identity.purpose) == (
        "insights",
        Role.SERVICE,
        "analytics",
    )
    assert keys.verify(keys.mint("alice")).purpose is None  # default: none


@pytest.mark.parametrize("purpose", ["Analytics", "", "a" * 33, "ana lytics", "é"])
def test_a_bad_purpose_is_neither_minted_nor_accepted(purpose):
    keys = TokenKeys(secret=SECRET)
    with pytest.raises(ValueError, match="purpose"):
        keys.mint("insights", role="service", purpose=purpose)
    forged = jwt.encode(
        {"sub": "insights", "role": "service", "purpose": purpose, "exp": time.time() + 60},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken, match="purpose"):
        keys.verify(forged)


def test_a_purpose_that_is_not_a_string_is_refused():
    forged = jwt.encode(
        {"sub": "insights", "role": "service", "purpose": ["analytics"], "exp": time.time() + 60},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken, match="purpose"):
        TokenKeys(secret=SECRET).verify(forged)


def _cli(*args: str, tmp_path) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "syncd", "token", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"SYNCD_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )


def test_cli_prints_a_token_with_the_purpose(tmp_path):
    out = _cli(
        "--sub", "insights", "--role", "service", "--purpose", "analytics", tmp_path=tmp_path
    )
    assert out.returncode == 0, out.stderr
    [token] = out.stdout.split()
    assert TokenKeys(secret=SECRET).verify(token).purpose == "analytics"
    bad = _cli("--sub", "insights", "--purpose", "Not Valid", tmp_path=tmp_path)
    assert bad.returncode == 2 and "purpose" in bad.stderr and bad.stdout == ""
