"""Tokens: HS256 by default, EdDSA/ES256 with a public key; the CLI mints them."""

from __future__ import annotations

import subprocess
import sys
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from syncd.settings import Settings
from syncd.tokens import InvalidToken, TokenKeys


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
