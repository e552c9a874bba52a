"""Remembered Cedar decisions: the same request gets the same answer, and any change to the
request or to the policies is asked of Cedar again."""

from __future__ import annotations

from charter.adapters.cedar import CedarPolicyEngine
from charter.domain.authz import Action, AuthzRequest, Resource
from charter.domain.crn import CRN
from charter.domain.org import OrgPolicy

REGISTRY = Resource(CRN("ml-dev", "registry", "model-package-group", "*"), "Registry",
                    {"account_kind": "workload", "stage": "dev", "readers": []})
FORBID = OrgPolicy("no-groups", 'forbid (principal, action == Charter::Action::"registry:CreateModelPackageGroup", '
                               "resource);", "")


def _request(roles: frozenset[str], resource: Resource = REGISTRY) -> AuthzRequest:
    return AuthzRequest(principal="lena", principal_kind="human", roles=roles, action=Action.CREATE_GROUP,
                        resource=resource,
                        context={"session": False, "member_of": ["ml-dev"], "account": "ml-dev"})


def test_a_repeated_request_gets_the_same_decision() -> None:
    engine = CedarPolicyEngine()
    first = engine.decide(_request(frozenset({"lead-data-scientist"})), 0, list)
    assert first.allowed
    assert engine.decide(_request(frozenset({"lead-data-scientist"})), 0, list) == first


def test_a_role_taken_away_is_decided_again_and_denied() -> None:
    engine = CedarPolicyEngine()
    assert engine.decide(_request(frozenset({"lead-data-scientist"})), 0, list).allowed
    assert not engine.decide(_request(frozenset()), 0, list).allowed


def test_a_changed_resource_attribute_is_decided_again() -> None:
    engine = CedarPolicyEngine()
    assert engine.decide(_request(frozenset({"lead-data-scientist"})), 0, list).allowed
    prod = Resource(REGISTRY.crn, "Registry", {**REGISTRY.attrs, "stage": "prod", "account_kind": "workload"})
    again = engine.decide(_request(frozenset({"lead-data-scientist"}), prod), 0, list)
    assert again == engine._decide(engine._policy_set(0, list), _request(frozenset({"lead-data-scientist"}), prod))


def test_a_new_policy_revision_is_decided_again_under_its_policies() -> None:
    engine = CedarPolicyEngine()
    assert engine.decide(_request(frozenset({"lead-data-scientist"})), 0, list).allowed
    denied = engine.decide(_request(frozenset({"lead-data-scientist"})), 1, lambda: [FORBID])
    assert not denied.allowed
    assert denied.deciding_policy == "no-groups"
