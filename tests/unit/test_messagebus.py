"""The bus's guarantees: one transaction per message, audit in the same transaction, refusals audited."""

from __future__ import annotations

import pytest

from charter.domain import commands as c
from charter.domain.audit import Outcome
from charter.domain.identity import Identity
from charter.domain.org import OrgUnit
from charter.errors import Conflict, PermissionDenied, ServerError, Unauthenticated, ValidationError
from charter.services.messagebus import HandlerContext
from tests.unit.conftest import World


def test_every_change_is_audited_in_its_own_transaction(world: World) -> None:
    before = len(world.store.data.records)
    issued = world.bus.handle(c.CreateToken("lena"), world.admin)
    records = world.store.data.records[before:]
    assert [(r.action, r.outcome, r.actor) for r in records] == [("iam:CreateToken", Outcome.ALLOWED, "admin")]
    assert records[0].details["token"] == issued.token.id


def test_a_failed_apply_leaves_the_organization_as_it_was(world: World, example_text: str) -> None:
    before = world.store.data.state
    bad = example_text.replace("stage: prod", "stage: production")
    with pytest.raises(ValidationError) as refused:
        world.bus.handle(c.ApplyOrg(bad, "acme.yaml"), world.admin)
    assert refused.value.details["file"] == "acme.yaml"
    assert any(p["field"].startswith("accounts[") and p["field"].endswith("].stage")
               for p in refused.value.details["problems"])
    assert world.store.data.state == before
    assert world.store.data.records[-1].outcome == Outcome.FAILED


def test_a_command_whose_handler_audits_nothing_is_refused_and_rolled_back(world: World) -> None:
    class Sneaky(c.Command):
        pass

    def handler(_: Sneaky, ctx: HandlerContext) -> None:
        ctx.uow.org.delete_binding(next(iter(ctx.uow.org.load_state().bindings)))

    world.bus.register(Sneaky, handler)
    bindings = set(world.store.data.state.bindings)
    with pytest.raises(ServerError, match="without an audit record"):
        world.bus.handle(Sneaky(), world.admin)
    assert world.store.data.state.bindings == bindings


def test_init_runs_once(world: World) -> None:
    with pytest.raises(Conflict):
        world.bus.handle(c.InitOrg("other"), Identity("system", "test"))


def test_a_revoked_token_no_longer_authenticates(world: World) -> None:
    issued = world.bus.handle(c.CreateToken("lena"), world.admin)
    world.bus.handle(c.RevokeToken(issued.token.id), world.admin)
    with pytest.raises(Unauthenticated, match="revoked"):
        world.bus.authenticate(issued.bearer)


def test_an_expired_token_no_longer_authenticates(world: World) -> None:
    issued = world.bus.handle(c.CreateToken("lena", expires_in_seconds=120), world.admin)
    world.clock.advance(seconds=121)
    with pytest.raises(Unauthenticated, match="expired"):
        world.bus.authenticate(issued.bearer)


def test_an_expired_session_no_longer_authenticates(world: World) -> None:
    lena = world.token_for("lena")
    issued = world.bus.handle(c.AssumeRole("ml-dev", "lead-data-scientist", 300), lena)
    world.clock.advance(seconds=301)
    with pytest.raises(Unauthenticated, match="expired"):
        world.bus.authenticate(issued.bearer)


def test_revoking_a_token_ends_its_sessions(world: World) -> None:
    issued = world.bus.handle(c.CreateToken("lena"), world.admin)
    lena = world.bus.authenticate(issued.bearer)
    session = world.bus.handle(c.AssumeRole("ml-dev", "lead-data-scientist"), lena)
    world.bus.handle(c.RevokeToken(issued.token.id), world.admin)
    with pytest.raises(Unauthenticated):
        world.bus.authenticate(session.bearer)


def test_a_tampered_secret_is_refused_and_audited(world: World) -> None:
    issued = world.bus.handle(c.CreateToken("lena"), world.admin)
    with pytest.raises(Unauthenticated):
        world.bus.authenticate(issued.bearer[:-2] + "xx")
    last = world.store.data.records[-1]
    assert (last.action, last.outcome, last.actor) == ("iam:Authenticate", Outcome.DENIED, None)


def test_tokens_are_stored_only_as_hashes(world: World) -> None:
    issued = world.bus.handle(c.CreateToken("lena"), world.admin)
    stored = world.store.data.tokens[issued.token.id]
    assert issued.bearer.split("_", 2)[2] not in repr(stored)


def test_applied_changes_emit_events_to_the_outbox(world: World) -> None:
    types = {e.type for e in world.store.data.outbox}
    assert {"charter.org.account.created", "charter.iam.role-binding.changed"} <= types


def test_checkpoints_are_signed_and_the_witness_follows(world: World) -> None:
    for _ in range(4):
        world.bus.handle(c.CreateToken("lena"), world.admin)
    assert world.store.data.checkpoints, "checkpoint_every=4 must have produced checkpoints"
    assert world.witness.checkpoint == world.store.data.checkpoints[-1]
    assert world.bus.handle(c.VerifyAudit(), world.admin).ok


def test_removing_a_binding_takes_the_role_away_at_once(world: World, example_text: str) -> None:
    lena = world.token_for("lena")
    session = world.bus.handle(c.AssumeRole("ml-dev", "lead-data-scientist"), lena)
    lena_session = world.bus.authenticate(session.bearer)
    assert world.bus.handle(c.ListRoleBindings("ml-dev"), lena_session)
    world.bus.handle(c.ApplyOrg(example_text.replace(
        "  - {principal: lena, account: ml-dev, role: lead-data-scientist}\n", "")), world.admin)
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.ListRoleBindings("ml-dev"), lena_session)


def test_each_applied_change_names_the_changed_thing_by_its_own_crn(world: World) -> None:
    subjects = {e.type: e.subject for e in world.store.data.outbox}
    assert subjects["charter.org.ou.created"] == str(OrgUnit("workloads").crn)
    rules = {e.subject for e in world.store.data.outbox if e.type == "charter.events.rule.created"}
    assert "crn:charter:ml-dev:events:rule/forward-approved-packages" in rules
    created = [e for e in world.store.data.outbox if e.type == "charter.org.account.created"]
    assert {e.source for e in created} >= {"ml-dev", "ml-prod"}


def test_a_commit_wakes_the_listeners_of_the_services_it_emitted_events_of(world: World) -> None:
    woken: list[str] = []
    world.bus.outbox_listeners.append(lambda: woken.append("every event"))
    world.bus.on_events(("iam",), lambda: woken.append("iam"))
    world.bus.on_events(("deployments", "endpoints"), lambda: woken.append("deployments"))
    world.bus.handle(c.CreateToken("lena"), world.admin)  # emits charter.iam.token.created
    assert sorted(woken) == ["every event", "iam"]
    sam = world.token_for("sam")
    woken.clear()
    with pytest.raises(PermissionDenied):  # refused and rolled back: nothing was written, nobody is woken
        world.bus.handle(c.CreateToken("admin"), sam)
    assert woken == []
