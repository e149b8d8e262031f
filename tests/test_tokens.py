"""Tokens: HS256 by default, EdDSA/ES256 with a public key; the CLI mints them."""

from __future__ import annotations

import subprocess
import sys
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from syncd.bearer import bearer_token
from syncd.settings import Settings
from syncd.tokens import (
    MIN_SECRET_BYTES,
    InvalidToken,
    TokenKeys,
    WeakSecret,
    load_or_create_secret,
)
from tests.support.servers import SECRET


def _pem(private) -> str:  # type: ignore[no-untyped-def]
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.parametrize(
    ("make_key", "alg"),
    [
        (ed25519.Ed25519PrivateKey.generate, "EdDSA"),
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
    ],
)
def test_public_key_tokens(make_key, alg):
    private = make_key()
    keys = TokenKeys(public_key_pem=_pem(private))
    claims = {"sub": "alice", "exp": int(time.time()) + 60, "tenant": "acme", "role": "service"}
    identity = keys.verify(jwt.encode(claims, private, algorithm=alg))
    assert (identity.sub, identity.tenant, identity.role) == ("alice", "acme", "service")
    # An HS256 token "signed" with the public key text is algorithm confusion: refused.
    with pytest.raises(InvalidToken):
        keys.verify(jwt.encode(claims, "x" * 40, algorithm="HS256"))
    other = make_key()
    with pytest.raises(InvalidToken):
        keys.verify(jwt.encode(claims, other, algorithm=alg))
    with pytest.raises(ValueError):
        keys.mint("alice")


def test_hs256_defaults_and_claims():
    keys = TokenKeys(secret="s" * 32)
    identity = keys.verify(keys.mint("bob", ttl=60))
    assert (identity.sub, identity.tenant, identity.role) == ("bob", "default", "user")
    with pytest.raises(InvalidToken, match="expired"):
        keys.verify(keys.mint("bob", ttl=-5))
    with pytest.raises(InvalidToken, match="missing"):
        keys.verify(None)
    bad_sub = jwt.encode({"sub": "no spaces allowed", "exp": time.time() + 60}, "s" * 32)
    with pytest.raises(InvalidToken, match="sub"):
        keys.verify(bad_sub)


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """The tokens PyJWT is asked to decode, in order (the ones TokenKeys did not remember)."""
    import syncd.tokens as tokens

    calls: list[str] = []
    real_decode = jwt.decode
    monkeypatch.setattr(
        tokens.jwt,
        "decode",
        lambda token, *a, **k: calls.append(token) or real_decode(token, *a, **k),
    )
    return calls


def test_verified_tokens_are_remembered_until_they_expire(monkeypatch, decoded):
    import syncd.tokens as tokens

    keys = TokenKeys(secret="s" * 32)
    token = keys.mint("bob", ttl=60)
    first = keys.verify(token)
    assert keys.verify(token) == first
    assert decoded == [token]  # the second check did not decode again
    # Another string is checked in full, whatever was verified before: a forged signature fails.
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(InvalidToken, match="invalid"):
        keys.verify(forged)
    # Remembered, it still expires at its exp, as PyJWT would say (PyJWT reads the clock through
    # datetime, which this test leaves alone: only the cache's check sees the later time).
    later = time.time() + 61
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(InvalidToken, match="expired"):
        keys.verify(token)
    assert decoded == [token, forged]
    keys.verify(token)  # forgotten: decoded again (and valid again by PyJWT's real clock)
    assert decoded == [token, forged, token]


def test_verified_tokens_kept_are_bounded(monkeypatch, decoded):
    import syncd.tokens as tokens

    monkeypatch.setattr(tokens, "VERIFIED_CACHE_SIZE", 2)
    keys = TokenKeys(secret="s" * 32)
    a, b, c = (keys.mint(name, ttl=60) for name in ("ann", "ben", "cat"))
    for token in (a, b, a, c):  # a was used again, so b is the oldest when c arrives
        keys.verify(token)
    assert decoded == [a, b, c]
    keys.verify(a)
    keys.verify(b)
    assert decoded == [a, b, c, b]


def test_cli_token_uses_the_daemons_key(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "syncd",
            "token",
            "--sub",
            "alice",
            "--role",
            "admin",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "SYNCD_SECRET": ""},
    )
    token = out.stdout.strip()
    assert "\n" not in token
    secret = (tmp_path / "secret").read_text().strip()
    assert TokenKeys(secret=secret).verify(token).role == "admin"
    settings = Settings.from_env({"SYNCD_PORT": "9999", "SYNCD_LOG_RETENTION_SECONDS": "forever"})
    assert settings.port == 9999 and settings.log_retention_seconds is None


@pytest.mark.anyio
async def test_dev_login_only_when_enabled(settings):
    from dataclasses import replace

    import httpx

    from tests.support.servers import start_daemon

    for enabled in (False, True):
        running = await start_daemon(replace(settings, dev_login=enabled))
        try:
            async with httpx.AsyncClient(base_url=running.http) as http:
                r = await http.post("/v1/dev/login", json={"name": "alice"})
                if not enabled:
                    assert r.status_code in (404, 405)
                    continue
                assert r.status_code == 200 and r.json()["sub"] == "alice"
                assert running.daemon.access.keys.verify(r.json()["token"]).sub == "alice"
                bad = await http.post("/v1/dev/login", json={"name": "no spaces"})
                assert bad.status_code == 400
        finally:
            await running.stop()


# -- secret strength (RFC 7518 §3.2: an HS256 key at least as long as the hash) ---------------


def test_short_secrets_refused_everywhere(tmp_path):
    assert len(SECRET.encode()) >= MIN_SECRET_BYTES  # what the test daemons sign with
    for short in ("x", "s" * 31, "é" * 15):  # 30 UTF-8 bytes
        with pytest.raises(WeakSecret, match="SYNCD_SECRET is too short"):
            Settings.from_env({"SYNCD_SECRET": short})
        with pytest.raises(WeakSecret, match="too short"):
            TokenKeys(secret=short)
    assert TokenKeys(secret="é" * 16).verify(TokenKeys(secret="é" * 16).mint("a")).sub == "a"
    assert Settings.from_env({"SYNCD_SECRET": ""}).secret is None  # unset: one is generated
    generated, created = load_or_create_secret(tmp_path / "fresh")
    assert created and len(generated.encode()) >= MIN_SECRET_BYTES
    stored = tmp_path / "old"
    stored.mkdir()
    (stored / "secret").write_text("hunter2\n")
    with pytest.raises(WeakSecret, match=f"the secret in {stored / 'secret'} is too short"):
        load_or_create_secret(stored)


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["token", "--sub", "alice"]])
def test_cli_refuses_a_short_secret(tmp_path, command):
    out = subprocess.run(
        [sys.executable, "-m", "syncd", *command, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SYNCD_SECRET": "x"},
    )
    assert out.returncode == 2
    assert out.stdout == ""
    assert f"syncd {command[0]}: SYNCD_SECRET is too short (1 byte;" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "syncd.db").exists()  # refused before anything started


# -- where the token comes from ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "query", "token"),
    [
        ("Bearer h", "q", "h"),  # the header wins
        ("bearer  h ", None, "h"),
        (None, "q", "q"),
        (None, None, None),
        ("Bearer", "q", ""),  # ours but empty: refused, never replaced by the query
        ("Bearer h x", "q", "h x"),  # ours but malformed: verification refuses it
        ("Basic dXNlcjpwdw==", "q", "q"),  # another scheme is not addressed to us
        ("Bearerh", "q", "q"),
    ],
)
def test_bearer_token_rule(header, query, token):
    from starlette.datastructures import Headers, QueryParams

    headers = Headers({"authorization": header} if header is not None else {})
    params = QueryParams({"token": query} if query is not None else {})
    assert bearer_token(headers, params) == token
