"""The policy engine on Cedar (cedarpy): the default set plus the organization's own policies.

Parsing is the expensive part, so the compiled PolicySet is cached per org policy revision and the
action hierarchy is parsed once, as one small store per action (the action and its groups); a
decision then only adds the principal and resource entities to its action's store.

A decision is a pure function of the policy set and the request (every entity is built from the
request alone), so decisions are also remembered, keyed on the policy revision and everything the
request carries: the same caller asking the same thing of the same resource, with the same roles
and attributes, gets the same answer without asking Cedar again. A changed binding, attribute or
policy is a different key.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources as package_files
from typing import Any

import cedarpy

from charter.domain.authz import Action, AuthzRequest, Decision
from charter.domain.org import OrgPolicy

NS = "Charter"
MAX_DECISIONS = 4096  # remembered decisions; the memo starts again when it is full


@cache
def default_policy_text() -> str:
    return (package_files.files("charter") / "policies" / "default.cedar").read_text()


def _uid(kind: str, ident: str) -> dict[str, str]:
    return {"type": f"{NS}::{kind}", "id": ident}


def _action_entities(action: Action) -> list[dict[str, Any]]:
    """The action and the groups it belongs to: all a decision about it needs of the action
    hierarchy (groups hold no groups). A store of these few entities, not of every action, is what
    each decision copies when it adds its principal and resource."""
    entities: list[dict[str, Any]] = [
        {"uid": _uid("Action", str(g)), "attrs": {}, "parents": []} for g in sorted(action.groups)]
    entities.append({"uid": _uid("Action", str(action)), "attrs": {},
                     "parents": [_uid("Action", str(g)) for g in action.groups]})
    return entities


class _Compiled:
    def __init__(self, revision: int, policies: Sequence[OrgPolicy]) -> None:
        text = default_policy_text()
        self.names: dict[str, str] = {}
        count = _count(text)
        self.names.update({f"policy{i}": f"default#{i}" for i in range(count)})
        parts = [text]
        for policy in policies:
            n = _count(policy.text)
            for j in range(n):
                self.names[f"policy{count + j}"] = policy.id if n == 1 else f"{policy.id}#{j + 1}"
            count += n
            parts.append(policy.text)
        self.revision = revision
        self.policy_set = cedarpy.PolicySet.from_str("\n".join(parts))


def _count(text: str) -> int:
    return len(json.loads(cedarpy.policies_to_json_str(text)).get("staticPolicies", {}))


class CedarPolicyEngine:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._compiled: _Compiled | None = None
        self._actions = {action: cedarpy.Entities.from_json_str(json.dumps(_action_entities(action)))
                         for action in Action}
        self._decisions: dict[tuple[Any, ...], Decision] = {}

    def _policy_set(self, revision: int, load: Callable[[], Sequence[OrgPolicy]]) -> _Compiled:
        compiled = self._compiled
        if compiled is None or compiled.revision != revision:
            with self._lock:
                compiled = self._compiled
                if compiled is None or compiled.revision != revision:
                    compiled = _Compiled(revision, load())
                    self._compiled = compiled
        return compiled

    def decide(
        self, request: AuthzRequest, revision: int, load_policies: Callable[[], Sequence[OrgPolicy]]
    ) -> Decision:
        compiled = self._policy_set(revision, load_policies)
        key = (compiled.revision, request.principal, request.principal_kind, request.roles, request.org_roles,
               request.action, request.resource.entity_type, str(request.resource.crn),
               json.dumps(request.resource.attrs, sort_keys=True), json.dumps(request.context, sort_keys=True))
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decide(compiled, request)
            if len(self._decisions) >= MAX_DECISIONS:
                self._decisions = {}
            self._decisions[key] = decision
        return decision

    def _decide(self, compiled: _Compiled, request: AuthzRequest) -> Decision:
        resource_type = request.resource.entity_type
        principal = {
            "uid": _uid("Principal", request.principal),
            "attrs": {"name": request.principal, "kind": request.principal_kind},
            "parents": [_uid("Role", role) for role in sorted(request.roles | request.org_roles)],
        }
        resource = {
            "uid": _uid(resource_type, str(request.resource.crn)),
            "attrs": {**request.resource.attrs, "account": request.resource.account},
            "parents": [],
        }
        entities = self._actions[request.action].with_added_json_str(json.dumps([principal, resource]))
        result = cedarpy.is_authorized(
            {
                "principal": principal["uid"],
                "action": _uid("Action", str(request.action)),
                "resource": resource["uid"],
                "context": {**request.context, "roles": sorted(request.roles)},
            },
            compiled.policy_set,
            entities,
        )
        annotations = result.diagnostics.id_annotations_by_reason
        names = tuple(annotations.get(r) or compiled.names.get(r, r) for r in result.diagnostics.reasons)
        return Decision(result.allowed, names, tuple(result.diagnostics.errors))

    def default_policies(self) -> list[OrgPolicy]:
        parsed = json.loads(cedarpy.policies_to_json_str(default_policy_text()))["staticPolicies"]
        out = []
        for key, body in parsed.items():
            name = body.get("annotations", {}).get("id", key)
            one = json.dumps({"staticPolicies": {key: body}, "templates": {}, "templateLinks": []})
            out.append(OrgPolicy(name, str(cedarpy.policies_from_json_str(one)), "default policy set"))
        return out

    def check(self, policies: Sequence[OrgPolicy]) -> dict[str, str]:
        problems: dict[str, str] = {}
        for policy in policies:
            try:
                if _count(policy.text) == 0:
                    problems[policy.id] = "contains no policy"
                    continue
                cedarpy.PolicySet.from_str(policy.text)
            except (ValueError, json.JSONDecodeError) as error:
                problems[policy.id] = f"not valid Cedar: {error}"
        return problems
