"""Who is calling: API tokens, assume-role sessions and the identity a request carries.

A bearer secret has the form ``<prefix>_<id>_<secret>``; only the SHA-256 of the secret part is
stored, so a database leak reveals no usable credential. Secrets are 256 random bits, which is why
a fast hash is enough here (a slow KDF protects low-entropy passwords, and Charter has none).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from charter.domain.crn import CRN
from charter.domain.org import MANAGEMENT_ACCOUNT


class CredentialKind(StrEnum):
    TOKEN = "cht"
    SESSION = "chs"


@dataclass(frozen=True, slots=True)
class Secret:
    """A freshly minted bearer secret: shown once, never stored."""

    kind: CredentialKind
    id: str
    value: str

    @property
    def bearer(self) -> str:
        return f"{self.kind}_{self.id}_{self.value}"

    @property
    def digest(self) -> str:
        return hash_secret(self.value)

    @classmethod
    def mint(cls, kind: CredentialKind) -> Secret:
        return cls(kind, secrets.token_hex(8), secrets.token_urlsafe(32))


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def secret_matches(value: str, digest: str) -> bool:
    return hmac.compare_digest(hash_secret(value), digest)


def parse_bearer(bearer: str) -> tuple[CredentialKind, str, str] | None:
    prefix, _, rest = bearer.partition("_")
    ident, _, value = rest.partition("_")
    try:
        kind = CredentialKind(prefix)
    except ValueError:
        return None
    if not ident or not value or len(bearer) > 256:
        return None
    # Ids are 16 hex digits (secrets.token_hex(8)); anything else is malformed, never looked up,
    # and never written into the refusal's audit record (where it would have to be a CRN part).
    if len(ident) != 16 or any(ch not in "0123456789abcdef" for ch in ident):
        return None
    return kind, ident, value


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: str
    principal: str
    secret_hash: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    description: str = ""

    @property
    def crn(self) -> CRN:
        return CRN(MANAGEMENT_ACCOUNT, "iam", "token", self.id)

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class Session:
    """An assumed role: one principal, one account, one role, until it expires."""

    id: str
    principal: str
    account: str
    role: str
    secret_hash: str
    created_at: datetime
    expires_at: datetime
    token_id: str

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "iam", "session", self.id)


@dataclass(frozen=True, slots=True)
class Identity:
    """The authenticated caller of one request."""

    principal: str
    credential_id: str
    session: Session | None = None
    principal_kind: str = "person"
    valid_until: datetime | None = None
    """When the credential stops being good (the token's or the session's expiry, the earlier);
    None: it does not expire (revocation still ends it)."""

    @property
    def via(self) -> str:
        if ":" in self.credential_id:
            # A delegated credential names its own kind (``rule:<account>/<rule>`` for a handler
            # acting as a rule's runAs principal); token and session ids never hold a colon.
            return self.credential_id[:64]
        kind = CredentialKind.SESSION if self.session else CredentialKind.TOKEN
        return f"{kind}:{self.credential_id}"

    def scope_roles(self, account: str, bound_roles: set[str]) -> set[str]:
        """The roles this caller may use in ``account``: all its bindings, or only the session's."""
        if self.session is None:
            return bound_roles
        if self.session.account != account or self.session.role not in bound_roles:
            return set()
        return {self.session.role}
