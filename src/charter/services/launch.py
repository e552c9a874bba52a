"""What launching a product needs besides the handlers: its parameters checked against the version's
JSON Schema, and its rendered provisions turned into resources, every problem found before any is
created (the handlers then create them in the command's one transaction)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

from charter.domain.catalog import ProductVersion
from charter.domain.crn import CRN
from charter.domain.deployments import ApprovalRule, IntegrationTests
from charter.domain.names import NAME_PATTERN
from charter.domain.org import (
    AccountKind,
    EventRule,
    EventTarget,
    OrgState,
    PrincipalKind,
    Stage,
    TargetKind,
)
from charter.domain.patterns import validate_pattern
from charter.domain.plan import Problem, _run_as_problems, _target_problems
from charter.domain.projects import (
    ProvisionedResource,
    ResourceKind,
    apply_defaults,
    coerce_parameters,
)
from charter.domain.registry import ModelPackageGroup
from charter.errors import ValidationError

_REQUIRED = re.compile(r"^'(.+)' is a required property$")


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fields(error: SchemaError) -> list[str]:
    where = _path(error.absolute_path)
    prefix = f"{where}." if where else ""
    if error.validator == "required":
        found = _REQUIRED.match(error.message)
        if found:
            return [prefix + found.group(1)]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        declared = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(k for k in error.instance if k not in declared)
        if extra:
            return [prefix + k for k in extra]
    return [where or "(parameters)"]


def validate_parameters(schema: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The launch parameters: text read as JSON where the schema wants it, defaults filled in, then
    checked against ``schema``. One ValidationError names every failing field."""
    values, coerce_problems = coerce_parameters(schema, given)
    problems = [Problem(k, reason) for k, reason in coerce_problems]
    values = dict(apply_defaults(dict(schema), values))
    bad = {p.field for p in problems}
    for error in sorted(Draft202012Validator(dict(schema)).iter_errors(values),
                        key=lambda e: (_path(e.absolute_path), e.message)):
        for name in _fields(error):
            if name.split(".")[0].split("[")[0] not in bad:
                reason = (f"unknown parameter; allowed: {', '.join(sorted(schema.get('properties', {})))}"
                          if error.validator == "additionalProperties" else error.message)
                problems.append(Problem(name, reason))
    if problems:
        listed = [{"field": p.field, "reason": p.reason} for p in problems]
        raise ValidationError("the parameters were refused: " + "; ".join(f"{p.field}: {p.reason}" for p in problems),
                              field="parameters", problems=listed, fields=sorted({p.field for p in problems}))
    return values


@dataclass(frozen=True, slots=True)
class PlannedRule:
    rule: EventRule | None
    """None when every target is a pipeline of the project (kept on the project until the
    pipelines engine starts runs from rules)."""
    resource: ProvisionedResource


@dataclass(frozen=True, slots=True)
class Plan:
    group: ModelPackageGroup | None
    rules: tuple[PlannedRule, ...]
    pipelines: tuple[ProvisionedResource, ...]
    deployments: tuple[ProvisionedResource, ...] = ()

    def resources(self) -> list[ProvisionedResource]:
        out = [ProvisionedResource(ResourceKind.MODEL_PACKAGE_GROUP, str(self.group.crn), self.group.name,
                                   {"readers": list(self.group.readers)})] if self.group else []
        return out + [r.resource for r in self.rules] + list(self.pipelines) + list(self.deployments)


def _name(value: Any, where: str, problems: list[Problem]) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value) or value.endswith("-"):
        problems.append(Problem(where, f"{str(value)[:80]!r} is not a valid name: 1-63 lowercase letters, "
                                       "digits and '-', starting with a letter"))
        return "invalid"
    return value


def _texts(value: Any, where: str, problems: list[Problem]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(Problem(where, "must render to a list of names"))
        return ()
    return tuple(value)


def plan(state: OrgState, account: str, manager: str, version: ProductVersion,
         provisions: Mapping[str, Any]) -> Plan:
    """The resources ``provisions`` (rendered) declares in ``account``, each checked as
    ``charter apply`` checks its kind; ValidationError listing every problem by its path."""
    problems: list[Problem] = []
    group = None
    spec = provisions.get("modelPackageGroup")
    if isinstance(spec, dict):
        name = _name(spec.get("name"), "provisions.modelPackageGroup.name", problems)
        readers = _texts(spec.get("readers", []), "provisions.modelPackageGroup.readers", problems)
        for reader in readers:
            known = state.units if reader.startswith("ou:") else state.accounts
            if reader.removeprefix("ou:") not in known:
                problems.append(Problem("provisions.modelPackageGroup.readers",
                                        f"unknown reader {reader!r}: name an account or ou:<unit>"))
        tags = spec.get("tags", {})
        pairs = tuple(sorted((str(k), str(v)) for k, v in tags.items())) if isinstance(tags, dict) else ()
        if not problems:
            group = ModelPackageGroup(account, name, str(spec.get("description", ""))[:4000], pairs, readers)
    pipelines = []
    for i, p in enumerate(provisions.get("pipelines", []) or []):
        name = _name(p.get("name"), f"provisions.pipelines[{i}].name", problems)
        definition = str(p.get("definition"))
        file = version.file(definition)
        pipelines.append(ProvisionedResource(
            ResourceKind.PIPELINE, str(CRN(account, "pipelines", "pipeline", name if name != "invalid" else "x")),
            name, {"definition": definition, "sha256": file.sha256 if file else None,
                   "product_version": str(version.crn), "start_on_launch": bool(p.get("startOnLaunch", False)),
                   "parameters": {str(k): v for k, v in (p.get("parameters") or {}).items()}}))
    declared = {p.name for p in pipelines}
    deployments = [_deployment(state, account, d, f"provisions.deployments[{i}]", problems)
                   for i, d in enumerate(provisions.get("deployments", []) or [])]
    deploying = {d.name for d in deployments}
    rules: list[PlannedRule] = []
    for i, r in enumerate(provisions.get("rules", []) or []):
        where = f"provisions.rules[{i}]"
        name = _name(r.get("name"), f"{where}.name", problems)
        if any(p.resource.name == name for p in rules):
            problems.append(Problem(f"{where}.name", f"renders to {name!r}, as an earlier rule does"))
        if r.get("account", account) != account:
            problems.append(Problem(f"{where}.account", f"a project's rules live on its own account's bus "
                                                        f"({account}), not {r.get('account')!r}"))
        for problem in validate_pattern(r.get("pattern")):
            problems.append(Problem(f"{where}.pattern.{problem.field}".replace(".(pattern)", ""), problem.reason))
        targets: list[EventTarget] = []
        to_pipelines: list[str] = []
        for j, target in enumerate(r.get("targets", [])):
            kind, value = next(iter(target.items()))
            if not isinstance(value, str):
                problems.append(Problem(f"{where}.targets[{j}]", "must render to text"))
            elif kind == "pipeline":
                if value not in declared:
                    problems.append(Problem(f"{where}.targets[{j}]", f"unknown pipeline {value!r}: the "
                                            f"product declares {', '.join(sorted(declared)) or 'none'}"))
                to_pipelines.append(value)
            elif kind == "deployment":
                if value not in deploying:
                    problems.append(Problem(f"{where}.targets[{j}]", f"unknown deployment pipeline {value!r}: the "
                                            f"product declares {', '.join(sorted(deploying)) or 'none'}"))
                targets.append(EventTarget(TargetKind.DEPLOYMENT, value))
            elif kind not in {str(k) for k in TargetKind}:
                problems.append(Problem(f"{where}.targets[{j}]", f"unknown target kind {kind!r}"))
            else:
                targets.append(EventTarget(TargetKind(kind), value))
        pattern = json.dumps(r.get("pattern"), sort_keys=True, separators=(",", ":"))
        rule = EventRule(account, name, pattern, tuple(targets), str(r.get("description", ""))[:4000],
                         managed_by=manager)
        for j, target in enumerate(targets):
            problems += _target_problems(state, rule, target, f"{where}.targets")
            problems += _run_as_problems(state, rule, target, f"{where}.targets[{j}].runAs")
        details = {"account": account, "pattern": r.get("pattern"),
                   "targets": [{str(t.kind): t.value} for t in targets] + [{"pipeline": p} for p in to_pipelines],
                   "on_bus": bool(targets)}
        rules.append(PlannedRule(rule if targets else None,
                                 ProvisionedResource(ResourceKind.EVENT_RULE, str(rule.crn), name, details)))
    if problems:
        listed = [{"field": p.field, "reason": p.reason} for p in problems]
        raise ValidationError(f"{version.crn} cannot be provisioned in {account}: "
                              + "; ".join(f"{p.field}: {p.reason}" for p in problems),
                              problems=listed, product=str(version.crn))
    return Plan(group, tuple(rules), tuple(pipelines), tuple(deployments))


def _deployment(state: OrgState, account: str, spec: Any, where: str, problems: list[Problem]) -> ProvisionedResource:
    """A deployment pipeline: in the shared-services account, from a test to a prod account, acting
    as a service principal that holds a role in both (every stage acts as it there)."""
    if not isinstance(spec, dict):
        problems.append(Problem(where, "must be an object"))
        spec = {}
    here = state.accounts.get(account)
    if here is not None and here.kind is not AccountKind.SHARED_SERVICES:
        problems.append(Problem(where, f"deployment pipelines live in the shared-services account, beside the "
                                       f"central registry; {account} is a {here.kind} account"))
    name = _name(spec.get("name"), f"{where}.name", problems)
    values = {key: _name(spec.get(key), f"{where}.{key}", problems)
              for key in ("modelGroup", "testAccount", "prodAccount", "endpoint", "runAs")}
    for key, stage in (("testAccount", Stage.TEST), ("prodAccount", Stage.PROD)):
        found = state.accounts.get(values[key])
        if values[key] != "invalid" and (found is None or found.stage is not stage):
            problems.append(Problem(f"{where}.{key}", f"{values[key]!r} is not a {stage} workload account"))
    if values["testAccount"] == values["prodAccount"] != "invalid":
        problems.append(Problem(f"{where}.prodAccount", "the test and production accounts must differ"))
    run_as = state.principals.get(values["runAs"])
    if values["runAs"] != "invalid":
        if run_as is None or run_as.kind is not PrincipalKind.SERVICE:
            problems.append(Problem(f"{where}.runAs", f"{values['runAs']!r} is not a service principal"))
        else:
            for key in ("testAccount", "prodAccount"):
                if not any(b.principal == run_as.name and b.account == values[key] for b in state.bindings):
                    problems.append(Problem(f"{where}.runAs", f"{run_as.name} holds no role in {values[key]}; "
                                                              "bind it a role there"))
    tests: dict[str, Any] = {}
    approval: dict[str, Any] = {}
    try:
        tests = IntegrationTests.from_document(spec.get("integrationTests"), f"{where}.integrationTests").to_document()
        approval = ApprovalRule.from_document(spec.get("approval")).to_document()
    except ValidationError as error:
        problems.append(Problem(str(error.details.get("field", where)), error.message))
    details = {"model_group": values["modelGroup"], "test_account": values["testAccount"],
               "prod_account": values["prodAccount"], "endpoint": values["endpoint"], "run_as": values["runAs"],
               "integration_tests": tests, "approval": approval}
    crn = CRN(account, "deployments", "deployment-pipeline", name if name != "invalid" else "x")
    return ProvisionedResource(ResourceKind.DEPLOYMENT_PIPELINE, str(crn), name, details)
