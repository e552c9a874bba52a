"""The template catalog: portfolios of versioned products, shared with accounts and granted to roles.

A platform engineer publishes products (templates for projects and workspaces) into portfolios of
the shared-services account, shares each portfolio with organizational units or accounts, and grants
it to role names there (``lead-data-scientist``, ``*-data-scientist``): members of a receiving
account may read the portfolio; those whose role a grant matches may launch its products.

Product versions are numbered 1, 2, 3 … per product, handed out in the publishing transaction (no
gaps, like model packages). A version is immutable: its files (a manifest of path, size, SHA-256,
each stored content-addressed), its parsed ``product.yaml`` and where it came from (a directory, or
a git repository at a ref resolved to a commit). Publishing the same files again is refused as a
Conflict naming the version that already holds them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from charter.domain.crn import CRN
from charter.domain.names import NAME_PATTERN, check_name
from charter.domain.plan import Problem
from charter.domain.registry import SHA256, check_artifact_path
from charter.errors import ValidationError

PRODUCT_FILE = "product.yaml"
MAX_FILES = 1000
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 128 * 1024 * 1024
MAX_PRODUCT_FILE_BYTES = 256 * 1024
MAX_TEXT = 4000
GRANT_PATTERN = re.compile(r"^[a-z0-9*?\[\]!-]{1,63}$")
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
BUILTIN_PLACEHOLDERS = frozenset({"project", "workspace", "account", "product", "version", "launched_by"})
"""Names a provision may use besides the parameters: filled in when the product is launched."""


class ProductKind(StrEnum):
    PROJECT = "project"
    WORKSPACE = "workspace"


class SourceKind(StrEnum):
    DIRECTORY = "directory"
    GIT = "git"


@dataclass(frozen=True, slots=True)
class Portfolio:
    account: str
    name: str
    description: str = ""
    provider: str = ""

    def __post_init__(self) -> None:
        check_name(self.account, "account")
        check_name(self.name, "portfolio")

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "catalog", "portfolio", self.name)


@dataclass(frozen=True, slots=True)
class Product:
    """A template in a portfolio; names are unique within the account that publishes it."""

    account: str
    portfolio: str
    name: str
    kind: ProductKind
    description: str = ""
    latest_version: int = 0

    def __post_init__(self) -> None:
        check_name(self.account, "account")
        check_name(self.portfolio, "portfolio")
        check_name(self.name, "product")

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "catalog", "product", self.name)


@dataclass(frozen=True, slots=True)
class ProductFile:
    path: str
    size: int
    sha256: str

    def __post_init__(self) -> None:
        check_artifact_path(self.path)
        if not SHA256.fullmatch(self.sha256):
            raise ValidationError(f"invalid SHA-256 digest for {self.path}", field="sha256")
        if not 0 <= self.size <= MAX_FILE_BYTES:
            raise ValidationError(f"{self.path}: a product file holds at most {MAX_FILE_BYTES} bytes",
                                  field="size", path=self.path)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a version came from. For git, ``commit`` is what ``ref`` resolved to when published."""

    kind: SourceKind
    repository: str | None = None
    ref: str | None = None
    commit: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if self.kind is SourceKind.DIRECTORY:
            if any((self.repository, self.ref, self.commit, self.path)):
                raise ValidationError("a directory source names no repository, ref, commit or path",
                                      field="source")
            return
        if not self.repository or len(self.repository) > 2000:
            raise ValidationError("a git source names its repository (at most 2000 characters)",
                                  field="source.repository")
        if not self.ref or len(self.ref) > 255 or any(c in self.ref for c in " \t\n\\") or ".." in self.ref:
            raise ValidationError(f"invalid git ref {self.ref!r}", field="source.ref")
        if not self.commit or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", self.commit):
            raise ValidationError(f"invalid git commit {self.commit!r}: expected a full object id",
                                  field="source.commit")
        if self.path is not None:
            check_artifact_path(self.path)


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """A parsed, structurally valid ``product.yaml``."""

    name: str
    description: str
    kind: ProductKind
    parameters: dict[str, Any]
    provisions: dict[str, Any]

    def to_document(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "kind": str(self.kind),
                "parameters": self.parameters, "provisions": self.provisions}


@dataclass(frozen=True, slots=True)
class ProductVersion:
    account: str
    portfolio: str
    product: str
    version: int
    files: tuple[ProductFile, ...]
    spec: ProductSpec
    source: Source
    published_by: str
    published_at: datetime

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValidationError("product versions start at 1", field="version")
        check_manifest(self.files)

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "catalog", "product", self.product, str(self.version))

    @property
    def content_digest(self) -> str:
        return content_digest(self.files)

    def file(self, path: str) -> ProductFile | None:
        return next((f for f in self.files if f.path == path), None)


def check_manifest(files: Iterable[ProductFile]) -> tuple[ProductFile, ...]:
    out = tuple(sorted(files, key=lambda f: f.path))
    if not out or len(out) > MAX_FILES:
        raise ValidationError(f"a product version holds 1 to {MAX_FILES} files", field="files")
    paths = [f.path for f in out]
    if len(set(paths)) != len(paths):
        raise ValidationError("file paths must be unique", field="files")
    if PRODUCT_FILE not in paths:
        raise ValidationError(f"a product version needs a {PRODUCT_FILE} at its root", field="files")
    if sum(f.size for f in out) > MAX_TOTAL_BYTES:
        raise ValidationError(f"a product version holds at most {MAX_TOTAL_BYTES} bytes", field="files")
    folders = {p.rsplit("/", 1)[0] for p in paths if "/" in p}
    folders |= {d.rsplit("/", i)[0] for d in folders for i in range(1, d.count("/") + 1)}
    clash = sorted(folders & set(paths))
    if clash:
        raise ValidationError(f"{clash[0]} is both a file and a folder", field="files", path=clash[0])
    return out


def content_digest(files: Iterable[ProductFile]) -> str:
    """One digest for a set of files: equal exactly when paths and contents are equal."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        h.update(f"{f.path}\0{f.sha256}\n".encode())
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Share:
    """A portfolio shared with ``ou:<unit>`` (every account in it or below it) or one account."""

    account: str
    portfolio: str
    target: str
    managed_by: str | None = field(default=None, compare=False)
    """What made the share when neither charter.yaml nor a platform engineer did (a vended
    account's blueprint): ``charter apply`` leaves it alone. Not part of a share's identity."""

    def __post_init__(self) -> None:
        check_share_target(self.target)

    @property
    def unit(self) -> str | None:
        return self.target.removeprefix("ou:") if self.target.startswith("ou:") else None

    def reaches(self, account: str, ancestors: Iterable[str]) -> bool:
        """Whether the share reaches ``account``, whose OU chain (its OU first) is ``ancestors``."""
        unit = self.unit
        return account == self.target if unit is None else unit in set(ancestors)


def check_share_target(target: str) -> str:
    if not isinstance(target, str) or not NAME_PATTERN.fullmatch(target.removeprefix("ou:")):
        raise ValidationError(f"invalid share target {target!r}: name an account or ou:<unit>",
                              field="target", value=str(target)[:100])
    return target


def share_targets(account: str, ancestors: Iterable[str]) -> list[str]:
    """Every share target that reaches ``account``: the account itself and each OU above it."""
    return [account, *(f"ou:{unit}" for unit in ancestors)]


@dataclass(frozen=True, slots=True)
class Grant:
    """Who may launch a portfolio's products: roles whose name matches ``pattern`` (fnmatch)."""

    account: str
    portfolio: str
    pattern: str

    def __post_init__(self) -> None:
        check_grant_pattern(self.pattern)

    def matches(self, role: str) -> bool:
        return fnmatch.fnmatchcase(role, self.pattern)


def check_grant_pattern(pattern: str) -> str:
    if not isinstance(pattern, str) or not GRANT_PATTERN.fullmatch(pattern) or pattern.count("[") != pattern.count("]"):
        raise ValidationError(
            f"invalid grant pattern {pattern!r}: a role name, or a pattern with * ? [..] "
            "(e.g. *-data-scientist)", field="pattern", value=str(pattern)[:100])
    return pattern


@dataclass(frozen=True, slots=True)
class ImportedPortfolio:
    """A portfolio shared with an account, the grants on it and all of its products."""

    portfolio: Portfolio
    grants: tuple[Grant, ...]
    products: tuple[Product, ...] = field(default=())

    def launchable(self, roles: Iterable[str]) -> tuple[Product, ...]:
        """The products a caller holding ``roles`` may launch: all, when a grant matches one."""
        held = list(roles)
        if any(g.matches(r) for g in self.grants for r in held):
            return self.products
        return ()


# --- product.yaml ---------------------------------------------------------------------------

_TOP = {"name", "description", "kind", "parameters", "provisions"}
_PROVISIONS = {"modelPackageGroup", "rules", "pipelines", "deployments", "workspace"}


def _where(path: str) -> str:
    return f"{PRODUCT_FILE}: {path}" if path else PRODUCT_FILE


def parse_product(doc: Any, files: Iterable[str] = ()) -> tuple[ProductSpec | None, list[Problem]]:
    """Check a loaded ``product.yaml`` for structure. ``files`` are the version's paths, which the
    provisions may refer to. Returns the spec, or None and every problem, each named by its path.
    (Whether ``parameters`` is a valid JSON Schema is checked by the service layer.)"""
    problems: list[Problem] = []

    def problem(path: str, reason: str) -> None:
        problems.append(Problem(_where(path), reason))

    if not isinstance(doc, dict):
        problem("", "must be a mapping with name, description, kind, parameters and provisions")
        return None, problems
    for key in sorted(set(doc) - _TOP, key=str):
        problem(str(key), f"unknown field; allowed: {', '.join(sorted(_TOP))}")
    name = doc.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or name.endswith("-"):
        problem("name", "required: 1-63 lowercase letters, digits and '-', starting with a letter")
    description = doc.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_TEXT:
        problem("description", f"must be text of at most {MAX_TEXT} characters")
    kind = doc.get("kind")
    if kind not in set(ProductKind):
        problem("kind", "required: project or workspace")
    parameters = doc.get("parameters", {"type": "object", "properties": {}})
    declared: set[str] = set()
    if not isinstance(parameters, dict):
        problem("parameters", "must be a JSON Schema object (a mapping)")
    else:
        if parameters.get("type") != "object":
            problem("parameters.type", 'must be "object": a product takes named parameters')
        props = parameters.get("properties", {})
        if not isinstance(props, dict):
            problem("parameters.properties", "must be a mapping of parameter names to schemas")
        else:
            declared = {str(k) for k in props}
            for key in props:
                if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,62}", key):
                    problem(f"parameters.properties.{key}", "parameter names are letters, digits and _")
    provisions = doc.get("provisions", {})
    if not isinstance(provisions, dict):
        problem("provisions", f"must be a mapping with any of {', '.join(sorted(_PROVISIONS))}")
        provisions = {}
    else:
        _check_provisions(provisions, declared, set(files), problem)
    if problems:
        return None, problems
    assert isinstance(name, str) and isinstance(parameters, dict) and isinstance(description, str)
    return ProductSpec(name, description, ProductKind(str(kind)), parameters, provisions), []


def _check_provisions(provisions: dict[str, Any], declared: set[str], files: set[str],
                      problem: Any) -> None:
    for key in sorted(set(provisions) - _PROVISIONS, key=str):
        problem(f"provisions.{key}", f"unknown provision; allowed: {', '.join(sorted(_PROVISIONS))}")

    def text(path: str, value: Any, required: bool = True) -> None:
        if value is None and not required:
            return
        if not isinstance(value, str) or not value or len(value) > 1000:
            problem(path, "required text" if required else "must be text")
            return
        for used in PLACEHOLDER.findall(value):
            if used not in declared and used not in BUILTIN_PLACEHOLDERS:
                problem(path, f"{{{{{used}}}}} is neither a parameter nor one of "
                              f"{', '.join(sorted(BUILTIN_PLACEHOLDERS))}")

    def names(path: str, value: Any) -> None:
        if not isinstance(value, list):
            problem(path, "must be a list")
            return
        for i, item in enumerate(value):
            text(f"{path}[{i}]", item)

    def mapping(path: str, value: Any, allowed: set[str], required: set[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            problem(path, "must be a mapping")
            return None
        for key in sorted(set(value) - allowed, key=str):
            problem(f"{path}.{key}", f"unknown field; allowed: {', '.join(sorted(allowed))}")
        for key in sorted(required - set(value)):
            problem(f"{path}.{key}", "required")
        return value

    group = provisions.get("modelPackageGroup")
    if group is not None:
        g = mapping("provisions.modelPackageGroup", group, {"name", "description", "readers", "tags"}, {"name"})
        if g is not None:
            text("provisions.modelPackageGroup.name", g.get("name"))
            text("provisions.modelPackageGroup.description", g.get("description"), required=False)
            if "readers" in g:
                names("provisions.modelPackageGroup.readers", g["readers"])
            if "tags" in g:
                tags = g["tags"]
                if not isinstance(tags, dict):
                    problem("provisions.modelPackageGroup.tags", "must be a mapping")
                else:
                    for k, v in tags.items():
                        text(f"provisions.modelPackageGroup.tags.{k}", v)
    rules = provisions.get("rules", [])
    if not isinstance(rules, list):
        problem("provisions.rules", "must be a list of rules")
        rules = []
    for i, rule in enumerate(rules):
        path = f"provisions.rules[{i}]"
        r = mapping(path, rule, {"name", "description", "account", "pattern", "targets"}, {"name", "pattern", "targets"})
        if r is None:
            continue
        text(f"{path}.name", r.get("name"))
        text(f"{path}.account", r.get("account"), required=False)
        if "pattern" in r and not isinstance(r["pattern"], dict):
            problem(f"{path}.pattern", "must be an event pattern (a mapping)")
        targets = r.get("targets", [])
        if not isinstance(targets, list) or not targets:
            problem(f"{path}.targets", "must be a non-empty list")
            continue
        for j, target in enumerate(targets):
            tp = f"{path}.targets[{j}]"
            if not isinstance(target, dict) or len(target) != 1 or next(iter(target)) not in {
                    "bus", "handler", "webhook", "pipeline", "deployment"}:
                problem(tp, "must be one of {bus: ACCOUNT}, {handler: NAME}, {webhook: URL}, {pipeline: NAME}, "
                            "{deployment: NAME}")
                continue
            text(f"{tp}.{next(iter(target))}", next(iter(target.values())))
    pipelines = provisions.get("pipelines", [])
    if not isinstance(pipelines, list):
        problem("provisions.pipelines", "must be a list of pipelines")
        pipelines = []
    seen: set[str] = set()
    for i, pipeline in enumerate(pipelines):
        path = f"provisions.pipelines[{i}]"
        p = mapping(path, pipeline, {"name", "description", "definition", "startOnLaunch", "parameters"},
                    {"name", "definition"})
        if p is None:
            continue
        text(f"{path}.name", p.get("name"))
        if p.get("name") in seen:
            problem(f"{path}.name", f"duplicate pipeline name {p.get('name')!r}")
        seen.add(str(p.get("name")))
        definition = p.get("definition")
        if isinstance(definition, str) and definition not in files:
            problem(f"{path}.definition", f"{definition!r} is not a file of this product")
        elif not isinstance(definition, str):
            problem(f"{path}.definition", "required: the path of the pipeline file in the product")
        if "startOnLaunch" in p and not isinstance(p["startOnLaunch"], bool):
            problem(f"{path}.startOnLaunch", "must be true or false")
        if "parameters" in p:
            params = p["parameters"]
            if not isinstance(params, dict):
                problem(f"{path}.parameters", "must be a mapping")
            else:
                for k, v in params.items():
                    text(f"{path}.parameters.{k}", v)
    deployments = provisions.get("deployments", [])
    if not isinstance(deployments, list):
        problem("provisions.deployments", "must be a list of deployment pipelines")
        deployments = []
    for i, deployment in enumerate(deployments):
        path = f"provisions.deployments[{i}]"
        d = mapping(path, deployment, {"name", "modelGroup", "testAccount", "prodAccount", "endpoint", "runAs",
                                       "integrationTests", "approval"},
                    {"name", "modelGroup", "testAccount", "prodAccount", "endpoint", "runAs"})
        if d is None:
            continue
        for key in ("name", "modelGroup", "testAccount", "prodAccount", "endpoint", "runAs"):
            text(f"{path}.{key}", d.get(key))
        for key in ("integrationTests", "approval"):
            # A mapping, or one placeholder a parameter object fills in.
            if key in d and not isinstance(d[key], dict):
                text(f"{path}.{key}", d[key])
    workspace = provisions.get("workspace")
    if workspace is not None:
        w = mapping("provisions.workspace", workspace, {"name", "members", "tags"}, {"name"})
        if w is not None:
            text("provisions.workspace.name", w.get("name"))
            text("provisions.workspace.members", w.get("members"), required=False)
            tags = w.get("tags", {})
            if not isinstance(tags, dict):
                problem("provisions.workspace.tags", "must be a mapping")
            else:
                for k, v in tags.items():
                    text(f"provisions.workspace.tags.{k}", v)


def refuse_product(problems: Iterable[Problem]) -> ValidationError:
    listed = [{"field": p.field, "reason": p.reason} for p in problems]
    lines = "; ".join(f"{p['field']}: {p['reason']}" for p in listed)
    return ValidationError(f"the product was not published: {lines}", file=PRODUCT_FILE, problems=listed)
