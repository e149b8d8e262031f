"""The daemon's VAPID key (RFC 8292): who signs the Web Push requests it sends.

Browsers bind a push subscription to the application server key it was made with, so the key
must outlive restarts and be the same on every node: ``SYNCD_VAPID_PRIVATE_KEY_FILE`` (a P-256
private key, PEM), or else one generated once into ``DATA_DIR/vapid_private_key.pem`` with a
warning, the way the token secret is (``syncd/daemon.py``). Losing it silently orphans every
subscription: the push services refuse pushes signed by another key.
"""

from __future__ import annotations

import base64
import logging
import time
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from .settings import Settings

__all__ = ["VapidKey", "b64url", "load_vapid_key"]

log = logging.getLogger("syncd.push")

GENERATED_NAME = "vapid_private_key.pem"
# A signed JWT is reused for this long per push service origin (valid 12 h; re-signed well
# before): an ECDSA signature per push would be wasted work on a burst.
TOKEN_SECONDS = 12 * 3600
RESIGN_BEFORE_SECONDS = 3600


def b64url(data: bytes) -> str:
    """base64url without padding, as the Push API and VAPID write keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class VapidKey:
    """A P-256 private key: the application server key browsers subscribe with, and the
    ``Authorization: vapid t=…, k=…`` header of each push."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, subject: str) -> None:
        # The JWT's ``sub`` claim (RFC 8292 §2.1): a contact for the push service's operators.
        self.subject = subject
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("a VAPID key must be on P-256 (prime256v1)")
        self._vapid = Vapid02(private_key)
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.public_key = b64url(point)  # what PushManager.subscribe takes
        self._tokens: dict[str, tuple[str, float]] = {}  # audience -> (header, expires)

    @classmethod
    def from_pem(cls, pem: bytes, subject: str) -> VapidKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("a VAPID key must be an EC (P-256) private key")
        return cls(key, subject)

    def authorization(self, endpoint: str) -> str:
        """The ``Authorization`` header for a push to ``endpoint`` (audience: its origin)."""
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        cached = self._tokens.get(audience)
        if cached is not None and cached[1] - RESIGN_BEFORE_SECONDS > now:
            return cached[0]
        expires = int(now) + TOKEN_SECONDS
        header = self._vapid.sign({"sub": self.subject, "aud": audience, "exp": expires})
        if len(self._tokens) > 1024:  # a handful of push services in practice; stay bounded
            self._tokens.clear()
        self._tokens[audience] = (header["Authorization"], expires)
        return header["Authorization"]


def load_vapid_key(settings: Settings) -> VapidKey:
    """The configured key, or the one generated in the data dir (created on first use)."""
    subject = settings.vapid_subject
    if settings.vapid_private_key_file is not None:
        return VapidKey.from_pem(settings.vapid_private_key_file.read_bytes(), subject)
    path: Path = settings.data_dir / GENERATED_NAME
    if path.exists():
        return VapidKey.from_pem(path.read_bytes(), subject)
    key = ec.generate_private_key(ec.SECP256R1())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    log.warning(
        "SYNCD_VAPID_PRIVATE_KEY_FILE is not set: generated a VAPID key in %s "
        "(set it to the same file on every node; a new key orphans every push subscription)",
        path,
    )
    return VapidKey(key, subject)
