"""Bearer tokens (JWT): verifying what clients present and minting tokens for development.

HS256 with the shared secret by default. A deployment where another system issues tokens
configures that system's public key instead (EdDSA or ES256), and syncd then only verifies.
The accepted algorithms are fixed by the key type, never read from the token, so ``alg: none``
or an HS256 token signed with a public key are refused.
"""

from __future__ import annotations

import enum
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import jwt

from .docid import is_principal

__all__ = [
    "MIN_SECRET_BYTES",
    "Identity",
    "InvalidToken",
    "Role",
    "TokenKeys",
    "WeakSecret",
    "check_secret",
    "is_purpose",
    "load_or_create_secret",
]

# A consent purpose (DESIGN.md §1.11): the same names in tokens and in consent bodies.
_PURPOSE = re.compile(r"[a-z0-9_-]{1,32}")


def is_purpose(value: object) -> bool:
    """Whether ``value`` is a purpose name: ``[a-z0-9_-]{1,32}``."""
    return isinstance(value, str) and _PURPOSE.fullmatch(value) is not None


class Role(enum.StrEnum):
    """A principal's role in its tenant, the token's ``role`` claim (DESIGN.md §1.2).

    A ``str`` enum: it is the claim's own string in tokens, JSON and logs."""

    USER = "user"
    SERVICE = "service"  # reads and writes every document of the tenant, as itself
    ADMIN = "admin"  # as a service, and manages every document (access, deletion)

    @property
    def privileged(self) -> bool:
        return self is not Role.USER


# Verified tokens kept per TokenKeys (see TokenKeys.verify): clients reconnect with the token they
# had, and a socket's opening costs ~1 ms, of which the signature check was ~50 µs. A few
# thousand entries of ~0.3 KiB (the token string and its Identity) is about a megabyte at most.
VERIFIED_CACHE_SIZE = 4096

# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits). A shorter
# secret can be brute-forced offline from any one token a client shows around.
MIN_SECRET_BYTES = 32


class WeakSecret(ValueError):
    """The HS256 secret is too short to sign tokens with."""


def check_secret(secret: str, source: str = "the token secret") -> None:
    """Raise :class:`WeakSecret` naming ``source`` unless ``secret`` has ``MIN_SECRET_BYTES``.

    The length counted is that of the UTF-8 bytes, which is what HMAC keys on."""
    size = len(secret.encode())
    if size < MIN_SECRET_BYTES:
        raise WeakSecret(
            f"{source} is too short ({size} byte{'' if size == 1 else 's'}; HS256 needs at "
            f"least {MIN_SECRET_BYTES}, RFC 7518 §3.2). Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


class InvalidToken(Exception):
    """The token is missing, malformed, forged or expired; ``str()`` is the reason to show."""


@dataclass(frozen=True, slots=True)
class Identity:
    sub: str
    tenant: str
    role: Role
    exp: float
    # What a service may use the data it reads for (``purpose`` claim, e.g. "analytics"): the
    # feed withholds updates of principals who did not consent to it (docs/privacy.md).
    purpose: str | None = None

    @property
    def privileged(self) -> bool:
        """Services and admins read every document of their tenant."""
        return self.role.privileged

    @property
    def bound_purpose(self) -> str | None:
        """The purpose this reader's data is filtered for: a service's ``purpose`` claim.
        Admins, and services without one, see everything (and are audited)."""
        return self.purpose if self.role is Role.SERVICE else None


class TokenKeys:
    def __init__(self, secret: str | None = None, public_key_pem: str | None = None) -> None:
        if public_key_pem:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            key = load_pem_public_key(public_key_pem.encode())
            self._verify_key: object = key
            name = type(key).__name__
            self._algorithms = ["EdDSA"] if "Ed25519" in name or "Ed448" in name else ["ES256"]
            self._secret = None
        elif secret:
            check_secret(secret)
            self._verify_key = secret
            self._algorithms = ["HS256"]
            self._secret = secret
        else:
            raise ValueError("a secret or a public key is required")
        # Tokens this key verified, by their exact text. The signature and the claims of a given
        # string never change, so only the expiry needs checking again; a new key (rotation,
        # key_watch.py) is a new TokenKeys with an empty cache. Only tokens that passed go in.
        self._verified: OrderedDict[str, Identity] = OrderedDict()

    def verify(self, token: str | None) -> Identity:
        if not token:
            raise InvalidToken("missing token")
        known = self._verified.get(token)
        if known is not None:
            if int(known.exp) <= time.time():  # PyJWT's own test (int(exp), leeway 0)
                del self._verified[token]
                raise InvalidToken("token expired")
            self._verified.move_to_end(token)
            return known
        identity = self._decode(token)
        self._verified[token] = identity
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return identity

    def _decode(self, token: str) -> Identity:
        try:
            claims = jwt.decode(
                token,
                self._verify_key,  # type: ignore[arg-type]
                algorithms=self._algorithms,
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"invalid token: {exc}") from exc
        sub = claims["sub"]
        tenant = claims.get("tenant", "default")
        role = _role(claims.get("role", "user"))
        if not isinstance(sub, str) or not is_principal(sub):
            raise InvalidToken("invalid token: bad sub")
        if not isinstance(tenant, str) or not is_principal(tenant):
            raise InvalidToken("invalid token: bad tenant")
        if role is None:
            raise InvalidToken(f"invalid token: unknown role {claims['role']!r}")
        purpose = claims.get("purpose")
        if purpose is not None and not is_purpose(purpose):
            raise InvalidToken("invalid token: bad purpose")
        return Identity(sub, tenant, role, float(claims["exp"]), purpose)

    def mint(
        self,
        sub: str,
        *,
        tenant: str = "default",
        role: Role | str = Role.USER,
        ttl: float = 3600,
        purpose: str | None = None,
    ) -> str:
        if self._secret is None:
            raise ValueError("this daemon only verifies tokens (public key configured)")
        known = _role(role)
        if not is_principal(sub) or not is_principal(tenant) or known is None:
            raise ValueError("invalid sub, tenant or role")
        if purpose is not None and not is_purpose(purpose):
            raise ValueError(f"invalid purpose {purpose!r}: expected [a-z0-9_-]{{1,32}}")
        now = int(time.time())
        claims = {
            "sub": sub,
            "tenant": tenant,
            "role": known.value,
            "iat": now,
            "exp": now + int(ttl),
        }
        if purpose is not None:
            claims["purpose"] = purpose
        return jwt.encode(claims, self._secret, algorithm="HS256")


def _role(value: object) -> Role | None:
    """The role a claim names; ``None`` for anything else (another string, a number, a list)."""
    if not isinstance(value, str):
        return None
    try:
        return Role(value)
    except ValueError:
        return None


def load_or_create_secret(data_dir: Path) -> tuple[str, bool]:
    """The secret stored in ``data_dir`` (created on first use); returns (secret, created).

    Raises:
        WeakSecret: the stored secret is too short (written by hand, or by an old version).
    """
    path = data_dir / "secret"
    if path.exists():
        secret = path.read_text().strip()
        check_secret(secret, f"the secret in {path}")
        return secret, False
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(MIN_SECRET_BYTES)  # 32 random bytes, 43 characters
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret, True
