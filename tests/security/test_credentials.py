"""Tampered, expired and revoked tokens and sessions: each is answered 401 in the one error shape,
audited (``iam:Authenticate``, denied), and changes nothing. A credential's expiry and revocation
are read from the database on every request, so they are changed there, as time or another process
would change them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from charter.domain import commands as c
from tests.conftest import EXAMPLE

from .conftest import Org, auth, refused
from .support import DEV

PAST = datetime(2020, 1, 1, tzinfo=UTC)


def _flip(s: str, i: int) -> str:
    return s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]


TAMPERINGS: dict[str, Callable[[str], str]] = {
    "last secret character changed": lambda b: _flip(b, len(b) - 1),
    "first secret character changed": lambda b: _flip(b, b.rindex("_") + 1),
    "id changed": lambda b: _flip(b, 5),
    "secret truncated": lambda b: b[:-1],
    "secret extended": lambda b: b + "A",
    "secret emptied": lambda b: b[:b.rindex("_") + 1],
    "secret of another length": lambda b: b + b[-20:],
    "prefix changed to the other kind": lambda b: ("chs_" if b.startswith("cht_") else "cht_") + b[4:],
    "prefix upper-cased": lambda b: b[:3].upper() + b[3:],
    "no prefix": lambda b: b[4:],
    "id only": lambda b: b[:b.rindex("_")],
    "separator doubled": lambda b: b.replace("_", "__", 1),
    "NUL appended": lambda b: b + "\x00",
    "unicode look-alike": lambda b: b.replace("c", "\u0441", 1),
    "percent-encoded": lambda b: b.replace("_", "%5F"),
    "SQL in the id": lambda b: "cht_' OR '1'='1_" + b.rsplit("_", 1)[1],
    "a JWT instead": lambda b: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.",
    "empty": lambda b: "",
    "very long": lambda b: b + "A" * 10000,
}


def _authenticate_failures(trail: object, mark: int) -> list[object]:
    return [r for r in trail.since(mark) if r.action == "iam:Authenticate"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", sorted(TAMPERINGS))
@pytest.mark.parametrize("kind", ["token", "session"])
def test_a_tampered_credential_is_refused_and_audited(api: TestClient, org: Org, attack: object, trail: object,
                                                     how: str, kind: str) -> None:
    bearer = org.bearer("lena")
    if kind == "session":
        bearer = org.bus.handle(c.AssumeRole(DEV, "lead-data-scientist"), org.identity("lena")).bearer
    forged = TAMPERINGS[how](bearer)
    with attack() as seen:  # type: ignore[operator]
        response = api.post(f"/api/v1/accounts/{DEV}/registry/groups", json={"name": "tampered"},
                            headers={"Authorization": f"Bearer {forged}"} if forged.isascii() else
                            {"Authorization": f"Bearer {forged}".encode()})  # type: ignore[dict-item]
        assert refused(response, 401)["type"] == "Unauthenticated"
    if forged.strip():
        assert any(r.action == "iam:Authenticate" and str(r.outcome) == "denied" for r in seen.records)


@pytest.mark.parametrize("header", ["Basic bGVuYTpsZW5h", "Token {b}", "Bearer", "Bearer  ", "{b}", "bearer{b}",
                                    "Bearer {b} extra", "Bearer {b},Bearer {b}"])
def test_a_malformed_authorization_header_is_unauthenticated(api: TestClient, org: Org, attack: object,
                                                             header: str) -> None:
    with attack():  # type: ignore[operator]
        response = api.post(f"/api/v1/accounts/{DEV}/registry/groups", json={"name": "malformed"},
                            headers={"Authorization": header.format(b=org.bearer("lena"))})
        refused(response, 401)


def _fresh_token(org: Org, who: str = "lena") -> tuple[str, str]:
    issued = org.bus.handle(c.CreateToken(who), org.admin)
    return issued.bearer, issued.token.id


def _set(org: Org, sql: str, **params: object) -> None:
    """A hand edit of the live database (moving a credential's clock). It bumps the org's state
    revision, as every writer of the rows servers cache must (adapters/db/orgcache.py)."""
    with org.platform.engine.begin() as conn:
        conn.execute(text(sql), params)
        conn.execute(text("UPDATE organization SET state_revision = state_revision + 1"))


@pytest.mark.parametrize("state", ["expired", "revoked", "expired a second ago"])
def test_a_dead_token_is_refused_and_audited(api: TestClient, org: Org, attack: object, state: str) -> None:
    bearer, token_id = _fresh_token(org)
    if state == "revoked":
        org.bus.handle(c.RevokeToken(token_id), org.admin)
    else:
        when = PAST if state == "expired" else datetime.now(UTC) - timedelta(seconds=1)
        _set(org, "UPDATE api_tokens SET expires_at = :t WHERE id = :i", t=when, i=token_id)
    with attack() as seen:  # type: ignore[operator]
        refused(api.get("/api/v1/whoami", headers=auth(bearer)), 401)
        refused(api.post(f"/api/v1/accounts/{DEV}/registry/groups", json={"name": "dead"}, headers=auth(bearer)), 401)
    assert sum(r.action == "iam:Authenticate" for r in seen.records) == 2


@pytest.mark.parametrize("state", ["expired", "its token revoked", "its token expired", "its role removed"])
def test_a_dead_session_is_refused(api: TestClient, org: Org, attack: object, state: str) -> None:
    bearer, token_id = _fresh_token(org, "sam")
    session = org.bus.handle(c.AssumeRole(DEV, "data-scientist"), org.bus.authenticate(bearer))
    assert api.get("/api/v1/whoami", headers=auth(session.bearer)).status_code == 200
    restore = False
    if state == "expired":
        _set(org, "UPDATE sessions SET expires_at = :t WHERE id = :i", t=PAST, i=session.session.id)
    elif state == "its token revoked":
        org.bus.handle(c.RevokeToken(token_id), org.admin)
    elif state == "its token expired":
        _set(org, "UPDATE api_tokens SET expires_at = :t WHERE id = :i", t=PAST, i=token_id)
    else:
        restore = True
        org.bus.handle(c.ApplyOrg(EXAMPLE.read_text().replace(
            "  - {principal: sam, account: ml-dev, role: data-scientist}\n", "")), org.admin)
    try:
        with attack():  # type: ignore[operator]
            response = api.post(f"/api/v1/accounts/{DEV}/registry/groups", json={"name": "dead-session"},
                                headers=auth(session.bearer))
            refused(response, 401, 403)
    finally:
        if restore:
            org.bus.handle(c.ApplyOrg(EXAMPLE.read_text()), org.admin)


def test_a_session_cannot_mint_a_long_lived_token_nor_chain_roles(api: TestClient, org: Org, attack: object) -> None:
    session = org.bus.handle(c.AssumeRole(DEV, "lead-data-scientist"), org.identity("lena"))
    with attack() as seen:  # type: ignore[operator]
        refused(api.post("/api/v1/tokens", json={"principal": "lena"}, headers=auth(session.bearer)), 403)
        refused(api.post("/api/v1/sessions", json={"account": DEV, "role": "lead-data-scientist"},
                         headers=auth(session.bearer)), 403)
    assert {r.policy for r in seen.records if str(r.outcome) == "denied"} >= {
        "sessions-cannot-mint-tokens", "no-role-chaining"}
