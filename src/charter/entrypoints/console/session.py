"""The console's sign-in: a sealed, HttpOnly, SameSite=Strict cookie, and its CSRF token.

The cookie carries the bearer the user signed in with (and the assumed-role session, if any),
sealed with AES-GCM under the server's console key: the browser's scripts cannot read it, another
site cannot send it, and nobody can read or forge it without the key. Nothing is kept on the
server, so any replica sharing the key serves any request, and the bearer is authenticated again
at every request (a revoked token signs the console out at once).

Every form carries ``csrf``, a random value kept in the same sealed cookie: a forged request from
another origin can neither read it nor guess it, so a form post without it is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field, replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

COOKIE = "charter_console"
_AAD = b"charter-console-v1"


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    csrf: str
    expires: float
    token: str | None = None
    """The bearer the user signed in with (an API token)."""
    role_session: str | None = None
    """An assumed-role session minted from ``token``; requests use it while it is set."""
    account: str | None = None
    """The account the pages open on (the session's, when a role is assumed)."""
    flash: list[str] = field(default_factory=list)

    @classmethod
    def anonymous(cls, lifetime: float) -> ConsoleSession:
        return cls(csrf=secrets.token_urlsafe(32), expires=time.time() + lifetime)

    @property
    def bearer(self) -> str | None:
        return self.role_session or self.token

    @property
    def signed_in(self) -> bool:
        return self.token is not None

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(str(presented).encode(), self.csrf.encode())

    def with_flash(self, message: str) -> ConsoleSession:
        return replace(self, flash=[*self.flash, message][-5:])


class Sealer:
    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the console needs a key to seal its cookies")
        self._aead = AESGCM(hashlib.sha256(b"console-cookie:" + key).digest())

    def seal(self, session: ConsoleSession) -> str:
        nonce = os.urandom(12)
        body = json.dumps(asdict(session), separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, body, _AAD)).decode()

    def open(self, value: str | None) -> ConsoleSession | None:
        """The session in a cookie, or None when it is missing, forged, damaged or expired."""
        if not value or len(value) > 8192:
            return None
        try:
            raw = base64.urlsafe_b64decode(value.encode())
            data = json.loads(self._aead.decrypt(raw[:12], raw[12:], _AAD))
            session = ConsoleSession(**data)
        except (ValueError, TypeError, InvalidTag):
            return None
        if session.expires <= time.time():
            return None
        return session
