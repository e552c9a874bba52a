"""Identity through the SDK against the real server: whoami, API tokens, assume-role sessions."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime

import httpx
import pytest

from charter.client.client import Client
from charter.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationError,
)

from .support import ServerProcess


def _set_column(server: ServerProcess, table: str, column: str, value: str, row_id: str) -> None:
    """Move a credential's clock by editing the live database (the tier never sleeps for expiry).

    The edit bumps the org's state revision, as every writer of the rows servers cache must
    (adapters/db/orgcache.py): the server reads the token again on its next request."""
    with closing(sqlite3.connect(server.data_dir / "charter.db", timeout=30)) as db, db:
        db.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (value, row_id))  # noqa: S608
        db.execute("UPDATE organization SET state_revision = state_revision + 1")


# --- whoami ---------------------------------------------------------------------------------------

def test_whoami_shows_the_principal_and_its_role_bindings(personas: dict[str, Client]) -> None:
    me = personas["mei"].whoami()

    assert me.principal.name == "mei"
    assert me.principal.kind == "person"
    assert me.session is None
    assert me.via.startswith("cht:")
    assert me.bindings == {"ml-prod": ["ml-engineer"], "ml-shared-services": ["ml-engineer"],
                           "ml-test": ["ml-engineer"]}


def test_whoami_of_a_service_principal_says_it_is_a_service(personas: dict[str, Client]) -> None:
    me = personas["promotion-bot"].whoami()

    assert me.principal.kind == "service"
    assert me.bindings == {"ml-shared-services": ["ml-engineer"]}


def test_request_without_credentials_is_unauthenticated(server: ServerProcess) -> None:
    with Client(server.url) as anonymous, pytest.raises(Unauthenticated):
        anonymous.whoami()


def test_malformed_token_is_unauthenticated(client_for: Callable[[str], Client]) -> None:
    with pytest.raises(Unauthenticated):
        client_for("not-a-charter-token").whoami()


def test_token_with_a_wrong_secret_is_unauthenticated(
        persona_tokens: dict[str, str], client_for: Callable[[str], Client]) -> None:
    prefix, ident, _secret = persona_tokens["lena"].split("_", 2)

    with pytest.raises(Unauthenticated):
        client_for(f"{prefix}_{ident}_{'A' * 43}").whoami()


# --- API tokens -----------------------------------------------------------------------------------

def test_created_token_authenticates_as_its_principal(admin: Client, client_for: Callable[[str], Client]) -> None:
    issued = admin.create_token("diego", expires_in_seconds=3600, description="e2e: works")

    me = client_for(issued.secret).whoami()

    assert me.principal.name == "diego"
    assert me.via == f"cht:{issued.token.id}"
    assert issued.token.state == "active"
    assert issued.token.created_by == "admin"


def test_token_listing_shows_the_token_but_never_its_secret(admin: Client, admin_token: str,
                                                            server: ServerProcess) -> None:
    issued = admin.create_token("grace", expires_in_seconds=3600, description="e2e: listed")
    _, _, secret_part = issued.secret.split("_", 2)

    raw = httpx.get(f"{server.url}/api/v1/tokens", params={"principal": "grace", "limit": 500},
                    headers={"authorization": f"Bearer {admin_token}"})

    assert raw.status_code == 200
    listed = {t.id: t for t in admin.tokens("grace")}
    assert listed[issued.token.id].description == "e2e: listed"
    assert listed[issued.token.id].state == "active"
    assert secret_part not in raw.text
    assert "secret" not in raw.text


def test_revoked_token_is_unauthenticated(admin: Client, client_for: Callable[[str], Client]) -> None:
    issued = admin.create_token("priya", expires_in_seconds=3600)
    holder = client_for(issued.secret)
    holder.whoami()

    revoked = admin.revoke_token(issued.token.id)

    assert revoked.state == "revoked"
    with pytest.raises(Unauthenticated) as refused:
        holder.whoami()
    assert "revoked" in refused.value.message


def test_revoking_a_token_twice_is_an_invalid_transition(admin: Client) -> None:
    issued = admin.create_token("priya", expires_in_seconds=3600)
    admin.revoke_token(issued.token.id)

    with pytest.raises(InvalidTransition):
        admin.revoke_token(issued.token.id)


def test_revoking_a_token_ends_the_sessions_made_from_it(
        admin: Client, client_for: Callable[[str], Client]) -> None:
    issued = admin.create_token("lena", expires_in_seconds=3600)
    session = client_for(issued.secret).as_role("ml-dev", "lead-data-scientist")
    session.whoami()

    admin.revoke_token(issued.token.id)

    with pytest.raises(Unauthenticated):
        session.whoami()
    session.close()


def test_revoked_token_is_listed_as_revoked(admin: Client) -> None:
    issued = admin.create_token("diego", expires_in_seconds=3600)
    admin.revoke_token(issued.token.id)

    listed = {t.id: t for t in admin.tokens("diego")}

    assert listed[issued.token.id].state == "revoked"
    assert listed[issued.token.id].revoked_at is not None


def test_expired_token_is_unauthenticated(admin: Client, server: ServerProcess,
                                          client_for: Callable[[str], Client]) -> None:
    issued = admin.create_token("diego", expires_in_seconds=60)
    holder = client_for(issued.secret)
    holder.whoami()

    _set_column(server, "api_tokens", "expires_at", "2000-01-01 00:00:00.000000", issued.token.id)

    with pytest.raises(Unauthenticated) as refused:
        holder.whoami()
    assert "expired" in refused.value.message
    assert {t.id: t for t in admin.tokens("diego")}[issued.token.id].state == "expired"


def test_token_lifetime_below_a_minute_is_refused(admin: Client) -> None:
    with pytest.raises(ValidationError) as refused:
        admin.create_token("sam", expires_in_seconds=5)

    assert refused.value.details["field"] == "expires_in_seconds"


def test_token_lifetime_beyond_the_maximum_is_refused(admin: Client) -> None:
    with pytest.raises(ValidationError) as refused:
        admin.create_token("sam", expires_in_seconds=366 * 86400)

    assert refused.value.details["field"] == "expires_in_seconds"


def test_token_for_an_unknown_principal_is_not_found(admin: Client) -> None:
    with pytest.raises(NotFound):
        admin.create_token("nobody-here", expires_in_seconds=3600)


def test_data_scientist_cannot_create_tokens(personas: dict[str, Client]) -> None:
    with pytest.raises(PermissionDenied) as denied:
        personas["sam"].create_token("sam", expires_in_seconds=3600)

    assert denied.value.details["policy"] == "default-deny"


def test_principal_can_list_its_own_tokens(personas: dict[str, Client], persona_tokens: dict[str, str]) -> None:
    own_id = persona_tokens["sam"].split("_")[1]

    listed = list(personas["sam"].tokens("sam"))

    assert own_id in {t.id for t in listed}
    assert {t.principal for t in listed} == {"sam"}


def test_principal_cannot_list_another_principals_tokens(personas: dict[str, Client]) -> None:
    with pytest.raises(PermissionDenied):
        list(personas["sam"].tokens("lena"))


def test_principal_can_revoke_its_own_token(admin: Client, client_for: Callable[[str], Client]) -> None:
    issued = admin.create_token("sam", expires_in_seconds=3600)
    holder = client_for(issued.secret)

    revoked = holder.revoke_token(issued.token.id)

    assert revoked.state == "revoked"
    with pytest.raises(Unauthenticated):
        holder.whoami()


def test_principal_cannot_revoke_another_principals_token(admin: Client, personas: dict[str, Client],
                                                          client_for: Callable[[str], Client]) -> None:
    issued = admin.create_token("lena", expires_in_seconds=3600)

    with pytest.raises(PermissionDenied):
        personas["sam"].revoke_token(issued.token.id)
    assert client_for(issued.secret).whoami().principal.name == "lena"


# --- assume-role sessions -------------------------------------------------------------------------

def test_assume_role_gives_a_session_for_one_account_and_role(personas: dict[str, Client]) -> None:
    issued = personas["lena"].assume_role("ml-dev", "lead-data-scientist")

    assert issued.secret.startswith("chs_")
    assert issued.session.principal == "lena"
    assert issued.session.account == "ml-dev"
    assert issued.session.role == "lead-data-scientist"
    assert issued.session.expires_at > datetime.now(UTC)


def test_whoami_through_a_session_shows_the_session(personas: dict[str, Client]) -> None:
    with personas["lena"].as_role("ml-dev", "lead-data-scientist") as session:
        me = session.whoami()

    assert me.principal.name == "lena"
    assert me.session is not None
    assert (me.session.account, me.session.role) == ("ml-dev", "lead-data-scientist")
    assert me.via == f"chs:{me.session.id}"


def test_session_reads_role_bindings_of_its_own_account(personas: dict[str, Client]) -> None:
    with personas["mei"].as_role("ml-test", "ml-engineer") as session:
        bindings = session.role_bindings("ml-test")

    assert ("mei", "ml-engineer") in {(b.principal, b.role) for b in bindings}


def test_session_cannot_read_role_bindings_of_another_account(personas: dict[str, Client]) -> None:
    # mei holds ml-engineer in ml-prod too, but a session is scoped to the account it was made for.
    assert personas["mei"].role_bindings("ml-prod")
    with personas["mei"].as_role("ml-test", "ml-engineer") as session, pytest.raises(PermissionDenied) as denied:
        session.role_bindings("ml-prod")

    assert denied.value.details["policy"] == "default-deny"


def test_session_cannot_create_tokens(admin: Client) -> None:
    with admin.as_role("management", "org-admin") as session, pytest.raises(PermissionDenied) as denied:
        session.create_token("sam", expires_in_seconds=3600)

    assert denied.value.details["policy"] == "sessions-cannot-mint-tokens"


def test_session_cannot_assume_another_role(personas: dict[str, Client]) -> None:
    with personas["mei"].as_role("ml-test", "ml-engineer") as session, pytest.raises(PermissionDenied) as denied:
        session.assume_role("ml-prod", "ml-engineer")

    assert denied.value.details["policy"] == "no-role-chaining"


def test_assume_role_without_a_binding_is_denied_with_a_clear_message(personas: dict[str, Client]) -> None:
    with pytest.raises(PermissionDenied) as denied:
        personas["lena"].assume_role("ml-prod", "ml-engineer")

    assert denied.value.message == "lena holds no role binding as ml-engineer in ml-prod"
    assert denied.value.details["policy"] == "default-deny"


def test_assume_role_in_an_unknown_account_is_not_found(personas: dict[str, Client]) -> None:
    with pytest.raises(NotFound) as missing:
        personas["lena"].assume_role("ml-nowhere", "lead-data-scientist")

    assert missing.value.details["account"] == "ml-nowhere"


def test_assume_an_unknown_role_is_not_found(personas: dict[str, Client]) -> None:
    with pytest.raises(NotFound) as missing:
        personas["lena"].assume_role("ml-dev", "chief-wizard")

    assert missing.value.details["role"] == "chief-wizard"


def test_session_shorter_than_a_minute_is_refused(personas: dict[str, Client]) -> None:
    with pytest.raises(ValidationError) as refused:
        personas["lena"].assume_role("ml-dev", "lead-data-scientist", duration_seconds=5)

    assert refused.value.details["field"] == "duration_seconds"


def test_session_longer_than_the_maximum_is_refused(personas: dict[str, Client]) -> None:
    with pytest.raises(ValidationError) as refused:
        personas["lena"].assume_role("ml-dev", "lead-data-scientist", duration_seconds=13 * 3600)

    assert refused.value.details["field"] == "duration_seconds"


def test_session_never_outlives_the_token_behind_it(admin: Client, client_for: Callable[[str], Client]) -> None:
    issued = admin.create_token("lena", expires_in_seconds=120)

    session = client_for(issued.secret).assume_role("ml-dev", "lead-data-scientist", duration_seconds=3600)

    assert issued.token.expires_at is not None
    assert session.session.expires_at <= issued.token.expires_at


def test_expired_session_is_unauthenticated(personas: dict[str, Client], server: ServerProcess,
                                            client_for: Callable[[str], Client]) -> None:
    issued = personas["lena"].assume_role("ml-dev", "lead-data-scientist", duration_seconds=60)
    session = client_for(issued.secret)
    session.whoami()

    _set_column(server, "sessions", "expires_at", "2000-01-01 00:00:00.000000", issued.session.id)

    with pytest.raises(Unauthenticated) as refused:
        session.whoami()
    assert "expired" in refused.value.message
