"""Reading ``charter.yaml``: structure checked by Pydantic, every problem named by file and field."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticError

from charter.domain.blueprints import (
    REQUESTER,
    Blueprint,
    BlueprintBinding,
    PortfolioImport,
    render,
)
from charter.domain.catalog import Portfolio, check_grant_pattern, check_share_target
from charter.domain.catalog_plan import DeclaredPortfolio
from charter.domain.names import NAME_PATTERN
from charter.domain.org import (
    Account,
    AccountKind,
    BusPolicy,
    EventRule,
    EventTarget,
    OrgPolicy,
    OrgState,
    OrgUnit,
    Principal,
    PrincipalKind,
    RoleBinding,
    RoleDefinition,
    Stage,
    TargetKind,
)
from charter.domain.patterns import validate_pattern
from charter.domain.plan import Problem
from charter.errors import ValidationError

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN.pattern)]
MAX_DOCUMENT_BYTES = 1024 * 1024


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class UnitSpec(_Spec):
    name: Name
    parent: Name | None = None
    description: str = ""


class AccountSpec(_Spec):
    name: Name
    kind: AccountKind
    stage: Stage | None = None
    ou: Name | None = None
    description: str = ""


class PrincipalSpec(_Spec):
    name: Name
    kind: PrincipalKind = PrincipalKind.PERSON
    display_name: str = Field("", alias="displayName", max_length=200)
    email: str = Field("", max_length=320)


class RoleSpec(_Spec):
    name: Name
    description: str = ""


class BindingSpec(_Spec):
    principal: Name
    account: Name
    role: Name


class PolicySpec(_Spec):
    id: Name
    description: str = ""
    cedar: str = Field(min_length=1, max_length=64 * 1024)


class BusSpec(_Spec):
    account: Name
    allow: list[str] = Field(default_factory=list, max_length=200)


class TargetSpec(_Spec):
    handler: Name | None = None
    bus: Name | None = None
    webhook: str | None = Field(None, max_length=2048)
    deployment: Name | None = None
    pipeline: Name | None = None
    run_as: Name | None = Field(None, alias="runAs")
    max_attempts: int | None = Field(None, alias="maxAttempts", ge=1, le=100)
    max_age_seconds: int | None = Field(None, alias="maxAgeSeconds", ge=1, le=30 * 86400)


class RuleSpec(_Spec):
    account: Name
    name: Name
    description: str = ""
    enabled: bool = True
    pattern: dict[str, Any]
    targets: list[TargetSpec] = Field(min_length=1, max_length=5)


class ProductRefSpec(_Spec):
    path: str = Field(min_length=1, max_length=1000)


class PortfolioSpec(_Spec):
    account: Name
    name: Name
    description: str = Field("", max_length=4000)
    provider: str = Field("", max_length=200)
    shares: list[str] = Field(default_factory=list, max_length=200)
    grants: list[str] = Field(default_factory=list, max_length=200)
    products: list[ProductRefSpec] = Field(default_factory=list, max_length=200)


class BlueprintBindingSpec(_Spec):
    principal: str = Field(max_length=63)
    role: Name


class BlueprintBusSpec(_Spec):
    allow: list[str] = Field(default_factory=list, max_length=200)


class BlueprintRuleSpec(_Spec):
    account: str = Field("{{account}}", max_length=63)
    name: str = Field(max_length=63)
    description: str = ""
    enabled: bool = True
    pattern: dict[str, Any]
    targets: list[TargetSpec] = Field(min_length=1, max_length=5)


class ImportSpec(_Spec):
    account: Name
    portfolio: Name


class BlueprintSpec(_Spec):
    name: Name
    description: str = Field("", max_length=4000)
    kind: AccountKind
    stage: Stage | None = None
    bindings: list[BlueprintBindingSpec] = Field(default_factory=list, max_length=200)
    event_bus: BlueprintBusSpec | None = Field(None, alias="eventBus")
    rules: list[BlueprintRuleSpec] = Field(default_factory=list, max_length=100)
    imports: list[ImportSpec] = Field(default_factory=list, max_length=100)


class OrgDocument(_Spec):
    api_version: str = Field("charter/v1", alias="apiVersion", pattern=r"^charter/v1$")
    organization: Name
    org_units: list[UnitSpec] = Field(default_factory=list, alias="orgUnits")
    accounts: list[AccountSpec] = Field(default_factory=list)
    principals: list[PrincipalSpec] = Field(default_factory=list)
    roles: list[RoleSpec] = Field(default_factory=list)
    role_bindings: list[BindingSpec] = Field(default_factory=list, alias="roleBindings")
    policies: list[PolicySpec] = Field(default_factory=list)
    event_buses: list[BusSpec] = Field(default_factory=list, alias="eventBuses")
    rules: list[RuleSpec] = Field(default_factory=list)
    blueprints: list[BlueprintSpec] = Field(default_factory=list, max_length=200)
    portfolios: list[PortfolioSpec] = Field(default_factory=list, max_length=200)


_ALIASES = {"org_units": "orgUnits", "role_bindings": "roleBindings", "display_name": "displayName",
            "api_version": "apiVersion", "event_buses": "eventBuses",
            "run_as": "runAs", "max_attempts": "maxAttempts", "max_age_seconds": "maxAgeSeconds",
            "event_bus": "eventBus"}


def refuse(filename: str, problems: Iterable[Problem]) -> ValidationError:
    listed = [{"field": p.field, "reason": p.reason} for p in problems]
    lines = "; ".join(f"{filename}: {p['field']}: {p['reason']}" for p in listed)
    return ValidationError(f"{filename} was not applied: {lines}", file=filename, problems=listed)


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = _ALIASES.get(str(part), str(part))
            out += f".{name}" if out else name
    return out or "(document)"


def parse_document(document: str, filename: str) -> OrgDocument:
    if len(document.encode()) > MAX_DOCUMENT_BYTES:
        raise refuse(filename, [Problem("(document)", f"larger than {MAX_DOCUMENT_BYTES} bytes")])
    try:
        raw = yaml.safe_load(document)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        raise refuse(filename, [Problem(where, f"not valid YAML: {getattr(error, 'problem', error)}")]) from None
    if not isinstance(raw, dict):
        raise refuse(filename, [Problem("(document)", "must be a mapping with an 'organization' key")])
    try:
        return OrgDocument.model_validate(raw)
    except PydanticError as error:
        problems = [Problem(_location(e["loc"]), e["msg"]) for e in error.errors()]
        raise refuse(filename, problems) from None


def _duplicates(kind: str, names: list[str]) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for i, name in enumerate(names):
        if name in seen:
            problems.append(Problem(f"{kind}[{i}].name", f"duplicate name {name!r}"))
        seen.add(name)
    return problems


def desired_state(doc: OrgDocument, filename: str) -> OrgState:
    problems = (
        _duplicates("orgUnits", [u.name for u in doc.org_units])
        + _duplicates("accounts", [a.name for a in doc.accounts])
        + _duplicates("principals", [p.name for p in doc.principals])
        + _duplicates("roles", [r.name for r in doc.roles])
        + _duplicates("policies", [p.id for p in doc.policies])
    )
    seen_bindings: set[tuple[str, str, str]] = set()
    for i, b in enumerate(doc.role_bindings):
        key = (b.principal, b.account, b.role)
        if key in seen_bindings:
            problems.append(Problem(f"roleBindings[{i}]", "duplicate role binding"))
        seen_bindings.add(key)
    problems += _duplicates("eventBuses", [b.account for b in doc.event_buses])
    problems += _duplicates("rules", [f"{r.account}/{r.name}" for r in doc.rules])
    rules = {}
    for rule in doc.rules:
        where = f"rules[{rule.account}/{rule.name}]"
        rules[f"{rule.account}/{rule.name}"] = _rule(rule, where, problems)
    problems += _duplicates("blueprints", [b.name for b in doc.blueprints])
    blueprints = {b.name: _blueprint(b, problems) for b in doc.blueprints}
    problems += _duplicates("portfolios", [f"{p.account}/{p.name}" for p in doc.portfolios])
    if problems:
        raise refuse(filename, problems)
    return OrgState(
        units={u.name: OrgUnit(u.name, u.parent, u.description) for u in doc.org_units},
        accounts={a.name: Account(a.name, a.kind, a.stage, a.ou, a.description) for a in doc.accounts},
        principals={p.name: Principal(p.name, p.kind, p.display_name, p.email) for p in doc.principals},
        roles={r.name: RoleDefinition(r.name, r.description) for r in doc.roles},
        bindings={RoleBinding(b.principal, b.account, b.role) for b in doc.role_bindings},
        policies={p.id: OrgPolicy(p.id, p.cedar, p.description) for p in doc.policies},
        bus_policies={b.account: BusPolicy(b.account, tuple(b.allow)) for b in doc.event_buses},
        rules=rules,
        blueprints=blueprints,
    )


def _rule(rule: RuleSpec | BlueprintRuleSpec, where: str, problems: list[Problem]) -> EventRule:
    for problem in validate_pattern(rule.pattern):
        problems.append(Problem(f"{where}.pattern.{problem.field}".replace(".(pattern)", ""), problem.reason))
    targets = []
    for j, target in enumerate(rule.targets):
        given = [(kind, value) for kind, value in (
            (TargetKind.HANDLER, target.handler), (TargetKind.BUS, target.bus),
            (TargetKind.WEBHOOK, target.webhook), (TargetKind.DEPLOYMENT, target.deployment),
            (TargetKind.PIPELINE, target.pipeline)) if value is not None]
        if len(given) != 1:
            problems.append(Problem(f"{where}.targets[{j}]", "name exactly one of handler, bus, webhook, deployment or pipeline"))
            continue
        targets.append(EventTarget(*given[0], run_as=target.run_as, max_attempts=target.max_attempts,
                                   max_age_seconds=target.max_age_seconds))
    pattern_text = json.dumps(rule.pattern, sort_keys=True, separators=(",", ":"))
    return EventRule(rule.account, rule.name, pattern_text, tuple(targets), rule.description, rule.enabled)


def _placeholder_name(value: str, where: str, what: str, problems: list[Problem]) -> None:
    """A name in a blueprint: a literal name once ``{{account}}`` / ``{{requester}}`` are filled in."""
    filled = render(value, "account", "requester")
    if "{{" in filled or "}}" in filled:
        problems.append(Problem(where, f"{value!r}: the only placeholders are {{{{account}}}} and {{{{requester}}}}"))
    elif not NAME_PATTERN.fullmatch(filled):
        problems.append(Problem(where, f"{value!r} is not a valid {what} name"))


def _blueprint(spec: BlueprintSpec, problems: list[Problem]) -> Blueprint:
    where = f"blueprints[{spec.name}]"
    if spec.kind is AccountKind.MANAGEMENT:
        problems.append(Problem(f"{where}.kind", "the management account is never vended"))
    if spec.kind is AccountKind.WORKLOAD and spec.stage is None:
        problems.append(Problem(f"{where}.stage", "a workload blueprint names its stage (dev, test or prod)"))
    if spec.kind is not AccountKind.WORKLOAD and spec.stage is not None:
        problems.append(Problem(f"{where}.stage", f"only workload accounts have a stage, not {spec.kind}"))
    seen: set[tuple[str, str]] = set()
    for i, b in enumerate(spec.bindings):
        if b.principal != REQUESTER:
            _placeholder_name(b.principal, f"{where}.bindings[{i}].principal", "principal", problems)
        if (b.principal, b.role) in seen:
            problems.append(Problem(f"{where}.bindings[{i}]", "duplicate role binding"))
        seen.add((b.principal, b.role))
    rules = []
    names: set[str] = set()
    for i, rule in enumerate(spec.rules):
        rule_where = f"{where}.rules[{i}]"
        _placeholder_name(rule.account, f"{rule_where}.account", "account", problems)
        _placeholder_name(rule.name, f"{rule_where}.name", "rule", problems)
        if rule.name in names:
            problems.append(Problem(f"{rule_where}.name", f"duplicate rule name {rule.name!r}"))
        names.add(rule.name)
        for j, target in enumerate(rule.targets):
            if target.bus is not None:
                _placeholder_name(target.bus, f"{rule_where}.targets[{j}].bus", "account", problems)
        rules.append(_rule(rule, rule_where, problems))
    imports = [PortfolioImport(x.account, x.portfolio) for x in spec.imports]
    for i, item in enumerate(imports):
        if item in imports[:i]:
            problems.append(Problem(f"{where}.imports[{i}]", f"duplicate import of {item.key}"))
    return Blueprint(spec.name, spec.kind, spec.stage, spec.description,
                     tuple(BlueprintBinding(b.principal, b.role) for b in spec.bindings),
                     tuple(spec.event_bus.allow) if spec.event_bus is not None else None,
                     tuple(rules), tuple(imports))


def declared_portfolios(doc: OrgDocument, filename: str) -> dict[str, DeclaredPortfolio]:
    """The portfolios the file declares, with exactly the shares and grants it gives them."""
    problems: list[Problem] = []
    out: dict[str, DeclaredPortfolio] = {}
    for spec in doc.portfolios:
        where = f"portfolios[{spec.account}/{spec.name}]"
        for i, target in enumerate(spec.shares):
            try:
                check_share_target(target)
            except ValidationError as error:
                problems.append(Problem(f"{where}.shares[{i}]", error.message))
        for i, pattern in enumerate(spec.grants):
            try:
                check_grant_pattern(pattern)
            except ValidationError as error:
                problems.append(Problem(f"{where}.grants[{i}]", error.message))
        for i, product in enumerate(spec.products):
            if product.path.startswith(("/", "\\")) or "\0" in product.path:
                problems.append(Problem(f"{where}.products[{i}].path",
                                        "a product folder is given relative to the file"))
        for field_name, values in (("shares", spec.shares), ("grants", spec.grants),
                                   ("products", [p.path for p in spec.products])):
            for i, value in enumerate(values):
                if value in values[:i]:
                    problems.append(Problem(f"{where}.{field_name}[{i}]", f"duplicate {value!r}"))
        if problems:
            continue
        out[f"{spec.account}/{spec.name}"] = DeclaredPortfolio(
            Portfolio(spec.account, spec.name, spec.description, spec.provider),
            frozenset(spec.shares), frozenset(spec.grants), tuple(p.path for p in spec.products))
    if problems:
        raise refuse(filename, problems)
    return out
