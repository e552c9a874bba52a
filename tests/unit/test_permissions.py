"""The default policy set, persona by persona (DESIGN.md's table, for the resources so far)."""

from __future__ import annotations

import pytest

from charter.domain import commands as c
from charter.domain.audit import Outcome
from charter.errors import NotFound, PermissionDenied
from tests.unit.conftest import World


def test_org_admin_can_create_tokens_for_anyone(world: World) -> None:
    issued = world.bus.handle(c.CreateToken("lena"), world.admin)
    assert issued.bearer.startswith("cht_") and issued.token.principal == "lena"


@pytest.mark.parametrize("persona", ["lena", "sam", "mei", "grace", "arthur", "priya", "diego"])
def test_only_the_org_admin_creates_tokens(world: World, persona: str) -> None:
    with pytest.raises(PermissionDenied) as denied:
        world.bus.handle(c.CreateToken("sam"), world.token_for(persona))
    assert denied.value.details["policy"] == "default-deny"


def test_a_denial_is_audited_with_the_deciding_policy(world: World) -> None:
    sam = world.token_for("sam")
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.CreateToken("sam"), sam)
    last = world.store.data.records[-1]
    assert (last.actor, last.outcome, last.policy, last.action) == (
        "sam", Outcome.DENIED, "default-deny", "iam:CreateToken")


def test_a_session_cannot_mint_long_lived_tokens(world: World) -> None:
    admin_session = world.session_for("admin", "management", "org-admin")
    with pytest.raises(PermissionDenied) as denied:
        world.bus.handle(c.CreateToken("lena"), admin_session)
    assert denied.value.details["policy"] == "sessions-cannot-mint-tokens"


def test_a_session_cannot_assume_another_role(world: World) -> None:
    session = world.session_for("mei", "ml-test", "ml-engineer")
    with pytest.raises(PermissionDenied) as denied:
        world.bus.handle(c.AssumeRole("ml-prod", "ml-engineer"), session)
    assert denied.value.details["policy"] == "no-role-chaining"


def test_assuming_a_role_not_held_names_the_missing_binding(world: World) -> None:
    with pytest.raises(PermissionDenied, match="holds no role binding as ml-engineer in ml-dev"):
        world.bus.handle(c.AssumeRole("ml-dev", "ml-engineer"), world.token_for("lena"))


def test_assuming_a_role_in_an_unknown_account_is_not_found(world: World) -> None:
    with pytest.raises(NotFound, match="unknown account"):
        world.bus.handle(c.AssumeRole("ml-nowhere", "ml-engineer"), world.token_for("lena"))


def test_the_org_policy_keeps_service_principals_out_of_production(world: World, example_text: str) -> None:
    text = example_text.replace(
        "  - {principal: promotion-bot, account: ml-shared-services, role: ml-engineer}",
        "  - {principal: promotion-bot, account: ml-shared-services, role: ml-engineer}\n"
        "  - {principal: promotion-bot, account: ml-prod, role: ml-engineer}")
    world.bus.handle(c.ApplyOrg(text), world.admin)
    with pytest.raises(PermissionDenied) as denied:
        world.bus.handle(c.AssumeRole("ml-prod", "ml-engineer"), world.token_for("promotion-bot"))
    assert denied.value.details["policy"] == "no-service-principals-in-prod"


def test_a_session_is_scoped_to_its_account(world: World) -> None:
    session = world.session_for("mei", "ml-test", "ml-engineer")
    assert world.bus.handle(c.ListRoleBindings("ml-test"), session)
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.ListRoleBindings("ml-prod"), session)


def test_members_read_the_bindings_of_their_own_accounts_only(world: World) -> None:
    sam = world.token_for("sam")
    assert {b.principal for b in world.bus.handle(c.ListRoleBindings("ml-dev"), sam)} >= {"lena", "sam"}
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.ListRoleBindings("ml-prod"), sam)


def test_a_principal_without_bindings_reads_nothing(world: World, example_text: str) -> None:
    text = example_text.replace("  - name: sam\n", "  - name: nobody\n  - name: sam\n")
    world.bus.handle(c.ApplyOrg(text), world.admin)
    nobody = world.token_for("nobody")
    assert world.bus.handle(c.WhoAmI(), nobody).principal.name == "nobody"
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.ListAccounts(), nobody)


@pytest.mark.parametrize("persona", ["arthur", "grace", "admin"])
def test_auditors_governance_officers_and_admins_read_the_audit_trail(world: World, persona: str) -> None:
    who = world.admin if persona == "admin" else world.token_for(persona)
    assert world.bus.handle(c.VerifyAudit(), who).ok


@pytest.mark.parametrize("persona", ["lena", "sam", "mei", "priya", "diego"])
def test_other_personas_cannot_read_the_audit_trail(world: World, persona: str) -> None:
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.ListAudit(), world.token_for(persona))


def test_anyone_may_list_and_revoke_their_own_tokens_only(world: World) -> None:
    lena = world.token_for("lena")
    own = world.bus.handle(c.ListTokens("lena"), lena)
    assert own.items and all(t.principal == "lena" for t in own.items)
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.ListTokens("sam"), lena)
    sams = world.bus.handle(c.CreateToken("sam"), world.admin).token
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.RevokeToken(sams.id), lena)
    world.bus.handle(c.RevokeToken(lena.credential_id), lena)
