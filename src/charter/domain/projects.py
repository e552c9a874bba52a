"""Projects and workspaces: what a team launches from a catalog product, and what it provisioned.

A project is launched in an account from one version of a product (kind ``project``): its
parameters, checked against the version's JSON Schema, fill the ``{{placeholders}}`` of the
product's provisions, and what those provisions declare (a model package group, event rules,
pipelines) is created with it and recorded on it by CRN. A workspace (kind ``workspace``) is a
team's space in an account: its members (who get a role binding there), the tags that charge its
costs, and the datasets it reads by default.

Rendering is strict: a placeholder that is neither a parameter nor a built-in (``project``,
``account``, ``workspace`` …) is refused naming it, never left in or replaced by nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from charter.domain.catalog import BUILTIN_PLACEHOLDERS, PLACEHOLDER
from charter.domain.crn import CRN
from charter.domain.names import check_name
from charter.errors import ValidationError

WORKSPACE_MEMBER_ROLE = "data-scientist"
"""The role a workspace's members get in its account (the members of a team build models there)."""

_JSON_TYPES = {"number", "integer", "boolean", "array", "object", "null"}


class LaunchStatus(StrEnum):
    ACTIVE = "Active"
    TERMINATED = "Terminated"


class ResourceKind(StrEnum):
    MODEL_PACKAGE_GROUP = "model-package-group"
    EVENT_RULE = "event-rule"
    PIPELINE = "pipeline"
    DEPLOYMENT_PIPELINE = "deployment-pipeline"


@dataclass(frozen=True, slots=True)
class ProvisionedResource:
    """One thing a project declared and created. ``details`` holds what is needed to act on it
    later: a rule's account, a pipeline's definition file and digest, its rendered parameters."""

    kind: ResourceKind
    crn: str
    name: str
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_document(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "crn": self.crn, "name": self.name, "details": self.details}

    @staticmethod
    def from_document(doc: Mapping[str, Any]) -> ProvisionedResource:
        return ProvisionedResource(ResourceKind(doc["kind"]), doc["crn"], doc["name"], dict(doc.get("details", {})))


@dataclass(frozen=True, slots=True)
class ProjectUpdate:
    """One move of a project to another version: what it added, changed, removed and kept."""

    at: datetime
    by: str
    from_version: int
    to_version: int
    parameters: dict[str, Any]
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_document(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "by": self.by, "from_version": self.from_version,
                "to_version": self.to_version, "parameters": self.parameters, "added": list(self.added),
                "changed": list(self.changed), "removed": list(self.removed), "kept": list(self.kept),
                "notes": list(self.notes)}

    @staticmethod
    def from_document(doc: Mapping[str, Any]) -> ProjectUpdate:
        return ProjectUpdate(datetime.fromisoformat(doc["at"]), doc["by"], int(doc["from_version"]),
                             int(doc["to_version"]), dict(doc["parameters"]), tuple(doc.get("added", ())),
                             tuple(doc.get("changed", ())), tuple(doc.get("removed", ())),
                             tuple(doc.get("kept", ())), tuple(doc.get("notes", ())))


@dataclass(frozen=True, slots=True)
class Project:
    account: str
    name: str
    product_account: str
    product: str
    version: int
    parameters: dict[str, Any]
    launched_by: str
    created_at: datetime
    updated_at: datetime
    workspace: str | None = None
    status: LaunchStatus = LaunchStatus.ACTIVE
    resources: tuple[ProvisionedResource, ...] = ()
    history: tuple[ProjectUpdate, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.account, "account")
        check_name(self.name, "project")
        if self.version < 1:
            raise ValidationError("product versions start at 1", field="version")

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "catalog", "project", self.name)

    @property
    def product_crn(self) -> CRN:
        return CRN(self.product_account, "catalog", "product", self.product, str(self.version))

    @property
    def managed_by(self) -> str:
        return project_manager(self.account, self.name)

    def of_kind(self, kind: ResourceKind) -> tuple[ProvisionedResource, ...]:
        return tuple(r for r in self.resources if r.kind is kind)


def project_manager(account: str, name: str) -> str:
    """The ``managed_by`` of what a project creates: ``charter apply`` leaves it alone."""
    return f"project:{account}/{name}"


def workspace_manager(account: str, name: str) -> str:
    return f"workspace:{account}/{name}"


@dataclass(frozen=True, slots=True, order=True)
class WorkspaceMember:
    principal: str
    role: str = WORKSPACE_MEMBER_ROLE
    bound: bool = field(default=True, compare=False)
    """Whether the member got a role binding (False: no such person, a service principal, or already bound)."""


@dataclass(frozen=True, slots=True)
class Workspace:
    account: str
    name: str
    team: str
    product_account: str
    product: str
    version: int
    parameters: dict[str, Any]
    launched_by: str
    created_at: datetime
    updated_at: datetime
    members: tuple[WorkspaceMember, ...] = ()
    cost_centre: str = ""
    business_unit: str = ""
    environment: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    data_access: tuple[str, ...] = ()
    """The datasets the workspace reads by default (their names in the data-governance account)."""
    status: LaunchStatus = LaunchStatus.ACTIVE

    def __post_init__(self) -> None:
        check_name(self.account, "account")
        check_name(self.name, "workspace")

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "catalog", "workspace", self.name)

    @property
    def product_crn(self) -> CRN:
        return CRN(self.product_account, "catalog", "product", self.product, str(self.version))

    @property
    def managed_by(self) -> str:
        return workspace_manager(self.account, self.name)


# --- parameters ---------------------------------------------------------------------------------

def _types(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {str(t) for t in declared}
    return set()


def coerce_parameters(schema: Mapping[str, Any], given: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """``--param k=v`` values arrive as text: read as JSON those whose schema wants a number, a
    boolean, an array or an object (and not text). Returns the values and the ones that are not
    JSON, as (field, reason)."""
    properties = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
    out: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in given.items():
        types = _types(properties.get(key)) if isinstance(properties, Mapping) else set()
        if isinstance(value, str) and types & _JSON_TYPES and "string" not in types:
            try:
                out[key] = json.loads(value)
            except ValueError:
                problems.append((key, f"{value[:100]!r} is not JSON (expected {' or '.join(sorted(types))})"))
                continue
        else:
            out[key] = value
        if len(json.dumps(out[key], default=str)) > 64 * 1024:
            problems.append((key, "larger than 64 KiB"))
    return out, problems


def apply_defaults(schema: Any, value: Any) -> Any:
    """``value`` with the defaults of ``schema``'s properties filled in, recursively for objects."""
    if not isinstance(schema, dict) or not isinstance(value, dict):
        return value
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return value
    out = dict(value)
    for key, sub in properties.items():
        if key not in out and isinstance(sub, dict) and "default" in sub:
            out[key] = json.loads(json.dumps(sub["default"]))
        if key in out:
            out[key] = apply_defaults(sub, out[key])
    return out


# --- rendering ----------------------------------------------------------------------------------

def builtins(*, project: str | None, workspace: str | None, account: str, product: str, version: int,
             launched_by: str) -> dict[str, Any]:
    values: dict[str, Any] = {"account": account, "product": product, "version": version,
                              "launched_by": launched_by}
    if project is not None:
        values["project"] = project
    if workspace is not None:
        values["workspace"] = workspace
    assert set(values) <= BUILTIN_PLACEHOLDERS
    return values


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def render(template: Any, values: Mapping[str, Any]) -> Any:
    """``template`` with every ``{{name}}`` filled from ``values``. A string that is one placeholder
    becomes the value itself (a list of members stays a list); inside text, the value's text. An
    unknown name, or a name with no value, is a ValidationError naming each."""
    unknown: set[str] = set()

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            whole = PLACEHOLDER.fullmatch(node)
            if whole is not None:
                name = whole.group(1)
                if name not in values:
                    unknown.add(name)
                    return node
                return values[name]

            def fill(match: Any) -> str:
                name = match.group(1)
                if name not in values:
                    unknown.add(name)
                    return str(match.group(0))
                return _text(values[name])

            return PLACEHOLDER.sub(fill, node)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {walk(k) if isinstance(k, str) else k: walk(v) for k, v in node.items()}
        return node

    out = walk(template)
    if unknown:
        names = ", ".join("{{" + n + "}}" for n in sorted(unknown))
        known = ", ".join(sorted(values))
        raise ValidationError(f"the provisions use {names}, which is neither a given parameter nor a "
                              f"built-in (known: {known})", field="provisions", placeholders=sorted(unknown))
    return out
