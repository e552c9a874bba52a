"""The model registry: groups, artifact uploads, package registration and approval decisions."""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from charter.domain import commands as c
from charter.domain.artifacts import BlobInfo, check_digest
from charter.domain.authz import Action, Resource
from charter.domain.crn import CRN
from charter.domain.events import Event, event_type
from charter.domain.model_formats import ModelInspection, inspect_model
from charter.domain.names import check_name
from charter.domain.org import Account, OrgState
from charter.domain.registry import (
    ApprovalStatus,
    Artifact,
    ColumnSpec,
    Lineage,
    ModelFormat,
    ModelPackage,
    ModelPackageGroup,
    Signature,
)
from charter.errors import Conflict, NotFound, ServerError, TooLarge, ValidationError
from charter.services.messagebus import HandlerContext
from charter.services.ports import ArtifactStore, Page, paginate

MAX_TEXT = 4000
MAX_ITEMS = 200
SPOOL_BYTES = 64 * 1024 * 1024  # model files up to this size are inspected in memory


@dataclass(frozen=True, slots=True)
class Download:
    info: BlobInfo
    chunks: Iterator[bytes]


def _store(ctx: HandlerContext) -> ArtifactStore:
    if ctx.artifacts is None:
        raise ServerError("no artifact store is configured")
    return ctx.artifacts



def reader_accounts(readers: tuple[str, ...], load_state: Callable[[], OrgState]) -> list[str]:
    """The accounts a group's resource policy admits: named accounts, and every account in a
    named OU or below it. The organization is read only when an OU has to be expanded."""
    admitted = {r for r in readers if not r.startswith("ou:")}
    units = [r.removeprefix("ou:") for r in readers if r.startswith("ou:")]
    if units:
        state = load_state()
        admitted.update(a.name for a in state.accounts.values()
                        if any(u in state.ou_ancestors(a.ou) for u in units))
    return sorted(admitted)


def _attrs(ctx: HandlerContext, account: Account, group: ModelPackageGroup | None) -> dict[str, Any]:
    readers = reader_accounts(group.readers, ctx.uow.org.load_state) if group else []
    return {"account_kind": str(account.kind), "stage": str(account.stage or ""), "readers": readers}


def _group_resource(ctx: HandlerContext, account: Account, group: ModelPackageGroup) -> Resource:
    return Resource(group.crn, "ModelPackageGroup", _attrs(ctx, account, group))


def _registry_resource(ctx: HandlerContext, account: Account) -> Resource:
    return Resource(CRN(account.name, "registry", "model-package-group", "*"), "Registry",
                    _attrs(ctx, account, None))


def _package_resource(ctx: HandlerContext, account: Account, group: ModelPackageGroup,
                      package: ModelPackage) -> Resource:
    return Resource(package.crn, "ModelPackage", {
        **_attrs(ctx, account, group), "responsible": sorted(package.lineage.responsible)})


def _require_group(ctx: HandlerContext, account: Account, name: str) -> ModelPackageGroup:
    group = ctx.uow.registry.get_group(account.name, name)
    if group is None:
        ctx.authorize(Action.LIST_GROUPS, _registry_resource(ctx, account))
        raise NotFound(f"no model package group {name!r} in {account.name}", group=name)
    return group


def check_readers(state: OrgState, readers: tuple[str, ...]) -> None:
    for reader in readers:
        known = state.units if reader.startswith("ou:") else state.accounts
        if reader.removeprefix("ou:") not in known:
            raise ValidationError(f"unknown reader {reader!r}: name an account or ou:<unit>", field="readers")


def create_group(cmd: c.CreateModelPackageGroup, ctx: HandlerContext) -> ModelPackageGroup:
    account = ctx.account(cmd.account)
    group = ModelPackageGroup(account.name, check_name(cmd.name, "model package group"),
                              cmd.description[:MAX_TEXT], _pairs(cmd.tags, "tags"), cmd.readers)
    ctx.authorize(Action.CREATE_GROUP, _group_resource(ctx, account, group))
    check_readers(ctx.uow.org.load_state(), group.readers)
    if ctx.uow.registry.get_group(account.name, group.name) is not None:
        raise Conflict(f"model package group {group.name} already exists in {account.name}", group=group.name)
    add_group(ctx, group, _group_resource(ctx, account, group))
    return group


def add_group(ctx: HandlerContext, group: ModelPackageGroup, resource: Resource, *,
              audit: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> None:
    """Store a new group (authorized by the caller) with its audit record and its ``created``
    event; ``audit`` and ``data`` add what made it (a project, a promoted source group)."""
    ctx.uow.registry.add_group(group, ctx.clock.now(), ctx.identity.principal)
    ctx.audit(Action.CREATE_GROUP, resource, readers=list(group.readers), **(audit or {}))
    ctx.emit(Event(event_type("registry", "model-package-group", "created"), group.account, str(group.crn),
                   {"group": group.name, "readers": list(group.readers), **(data or {})}))


def list_groups(cmd: c.ListModelPackageGroups, ctx: HandlerContext) -> Page[ModelPackageGroup]:
    account = ctx.account(cmd.account)
    ctx.authorize(Action.LIST_GROUPS, _registry_resource(ctx, account))
    items = ctx.uow.registry.list_groups(account.name, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda g: g.name)


def get_group(cmd: c.GetModelPackageGroup, ctx: HandlerContext) -> ModelPackageGroup:
    account = ctx.account(cmd.account)
    group = _require_group(ctx, account, cmd.name)
    ctx.authorize(Action.READ_GROUP, _group_resource(ctx, account, group))
    return group


def upload_artifact(cmd: c.UploadArtifact, ctx: HandlerContext) -> BlobInfo:
    account = ctx.account(cmd.account)
    resource = Resource(CRN(account.name, "registry", "artifact", "*"), "ArtifactStore",
                        _attrs(ctx, account, None))
    ctx.authorize(Action.UPLOAD_ARTIFACT, resource)
    store = _store(ctx)
    info = store.put(account.name, cmd.chunks, max_bytes=cmd.max_bytes)
    if cmd.inspect_as in set(ModelFormat):
        # Inspect here, outside any write transaction, so registering it later does not hold the
        # write lock while a large model is read; a file that fails is refused at registration.
        with contextlib.suppress(ValidationError, TooLarge):
            _inspect(store, account.name, Artifact(f"model.{cmd.inspect_as}", info.size, info.sha256),
                     ModelFormat(cmd.inspect_as))
    ctx.audit(Action.UPLOAD_ARTIFACT, Resource(CRN(account.name, "registry", "artifact", info.sha256),
                                               "Artifact"), sha256=info.sha256, size=info.size)
    return info


def get_artifact(cmd: c.GetArtifact, ctx: HandlerContext) -> Download:
    account = ctx.account(cmd.account)
    sha256 = check_digest(cmd.sha256)
    ctx.authorize(Action.READ_ARTIFACT, Resource(CRN(account.name, "registry", "artifact", sha256),
                                                 "Artifact", _attrs(ctx, account, None)))
    store = _store(ctx)
    info = store.stat(account.name, sha256)
    if info is None:
        raise NotFound(f"no artifact {sha256} in {account.name}", sha256=sha256)
    return Download(info, store.open(account.name, sha256))


def register_package(cmd: c.RegisterModelPackage, ctx: HandlerContext) -> ModelPackage:
    account = ctx.account(cmd.account)
    group = _require_group(ctx, account, cmd.group)
    ctx.authorize(Action.REGISTER_PACKAGE, _group_resource(ctx, account, group))
    try:
        model_format = ModelFormat(cmd.format)
    except ValueError:
        raise ValidationError(f"unsupported model format {cmd.format!r}: use skops or onnx "
                              "(pickle-based formats are refused)", field="format") from None
    if not cmd.artifacts or len(cmd.artifacts) > MAX_ITEMS:
        raise ValidationError(f"a package has 1 to {MAX_ITEMS} artifacts", field="artifacts")
    store = _store(ctx)
    artifacts = []
    for ref in cmd.artifacts:
        info = store.stat(account.name, check_digest(ref.sha256))
        if info is None:
            raise ValidationError(f"artifact {ref.path} ({ref.sha256}) was not uploaded to {account.name}",
                                  field="artifacts", path=ref.path)
        artifacts.append(Artifact(ref.path, info.size, info.sha256))
    inspections = [_inspect(store, account.name, a, model_format) for a in artifacts
                   if _is_model_file(a.path, model_format)]
    if not inspections:
        raise ValidationError(f"a {model_format} package needs its model file among the artifacts, "
                              f"named *.{model_format}", field="artifacts")
    version = ctx.uow.registry.allocate_version(account.name, group.name)
    package = ModelPackage(
        account=account.name, group=group.name, version=version, format=model_format,
        artifacts=tuple(artifacts),
        lineage=Lineage(ctx.identity.principal, cmd.run, cmd.run_started_by, cmd.datasets[:MAX_ITEMS],
                        cmd.product_version, _pairs(cmd.parameters, "parameters")),
        created_at=ctx.clock.now(), signature=_signature(cmd.signature),
        metrics=_metrics(cmd.metrics), sample_payload=cmd.sample_payload,
        description=cmd.description[:MAX_TEXT], tags=_pairs(cmd.tags, "tags"),
    )
    ctx.uow.registry.add_package(package)
    resource = _package_resource(ctx, account, group, package)
    ctx.audit(Action.REGISTER_PACKAGE, resource, version=version, digests=list(package.digests),
              models=[{"format": str(i.format), "estimator": i.estimator, "producer": i.producer_name}
                      for i in inspections])
    ctx.emit(Event(event_type("registry", "model-package", "registered"), account.name, str(package.crn),
                   {"group": group.name, "version": version, "status": str(package.status),
                    "digests": list(package.digests), "registered_by": ctx.identity.principal}))
    return package


class _Inspections:
    """Inspections already made, by (digest, format). A blob never changes under its digest, so an
    inspection made at upload time — outside any write transaction — holds at registration."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._items: dict[tuple[str, ModelFormat], ModelInspection] = {}

    def get(self, sha256: str, model_format: ModelFormat) -> ModelInspection | None:
        return self._items.get((sha256, model_format))

    def put(self, sha256: str, model_format: ModelFormat, inspection: ModelInspection) -> None:
        if len(self._items) >= self._size:
            self._items.pop(next(iter(self._items)))
        self._items[(sha256, model_format)] = inspection


INSPECTIONS = _Inspections()


def _is_model_file(path: str, model_format: ModelFormat) -> bool:
    """Whether an artifact is one of the package's model files, which registration inspects."""
    return path.endswith(f".{model_format}")


def quick_to_register(store: ArtifactStore | None, cmd: c.RegisterModelPackage) -> bool:
    """Whether ``register_package`` of ``cmd`` is a few statements and a ``stat`` of the local disk
    per artifact: the store is local files, and each model file among the artifacts was inspected
    already in this process (so none is read)."""
    if store is None or not store.local:
        return False
    try:
        model_format = ModelFormat(cmd.format)
    except ValueError:
        return True  # refused before any file is read
    return all(INSPECTIONS.get(ref.sha256, model_format) is not None for ref in cmd.artifacts
               if _is_model_file(ref.path, model_format))


def _inspect(store: ArtifactStore, account: str, artifact: Artifact, model_format: ModelFormat) -> ModelInspection:
    """Check a stored model file really is of its declared, safe format, without loading it."""
    known = INSPECTIONS.get(artifact.sha256, model_format)
    if known is not None:
        return known
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        for chunk in store.open(account, artifact.sha256):
            spool.write(chunk)
        spool.seek(0)
        try:
            inspection = inspect_model(model_format, spool)  # type: ignore[arg-type]
        except ValidationError as refused:
            raise ValidationError(f"{artifact.path}: {refused.message}",
                                  **{**refused.details, "path": artifact.path}) from None
    INSPECTIONS.put(artifact.sha256, model_format, inspection)
    return inspection


def list_packages(cmd: c.ListModelPackages, ctx: HandlerContext) -> Page[ModelPackage]:
    account = ctx.account(cmd.account)
    group = _require_group(ctx, account, cmd.group)
    ctx.authorize(Action.LIST_PACKAGES, _group_resource(ctx, account, group))
    status = _status(cmd.status) if cmd.status else None
    after = _int_cursor(cmd.page.after)
    items = ctx.uow.registry.list_packages(account.name, group.name, after, cmd.page.limit + 1, status)
    return paginate(items, cmd.page.limit, lambda p: str(p.version))


def get_package(cmd: c.GetModelPackage, ctx: HandlerContext) -> ModelPackage:
    account = ctx.account(cmd.account)
    group = _require_group(ctx, account, cmd.group)
    package = ctx.uow.registry.get_package(account.name, group.name, cmd.version)
    if package is None:
        ctx.authorize(Action.LIST_PACKAGES, _group_resource(ctx, account, group))
        raise NotFound(f"no version {cmd.version} in {group.crn}", version=cmd.version)
    ctx.authorize(Action.READ_PACKAGE, _package_resource(ctx, account, group, package))
    return package


def get_latest_package(cmd: c.GetLatestModelPackage, ctx: HandlerContext) -> ModelPackage:
    account = ctx.account(cmd.account)
    group = _require_group(ctx, account, cmd.group)
    ctx.authorize(Action.LIST_PACKAGES, _group_resource(ctx, account, group))
    status = _status(cmd.status)
    package = ctx.uow.registry.latest_package(account.name, group.name, status)
    if package is None:
        raise NotFound(f"no {status} version in {group.crn}", status=str(status))
    return package


def decide_package(cmd: c.DecideModelPackage, ctx: HandlerContext) -> ModelPackage:
    status = _status(cmd.status)
    account = ctx.account(cmd.account)
    group = _require_group(ctx, account, cmd.group)
    package = ctx.uow.registry.get_package(account.name, group.name, cmd.version)
    if package is None:
        ctx.authorize(Action.LIST_PACKAGES, _group_resource(ctx, account, group))
        raise NotFound(f"no version {cmd.version} in {group.crn}", version=cmd.version)
    action = Action.APPROVE_PACKAGE if status is ApprovalStatus.APPROVED else Action.REJECT_PACKAGE
    ctx.authorize(action, _package_resource(ctx, account, group, package))
    decided = package.decide(status, ctx.identity.principal, cmd.comment[:MAX_TEXT], ctx.clock.now())
    ctx.uow.registry.save_decision(decided)
    resource = _package_resource(ctx, account, group, decided)
    ctx.audit(action, resource, status=str(status), previous=str(package.status), comment=cmd.comment[:MAX_TEXT],
              digests=list(decided.digests))
    ctx.emit(Event(event_type("registry", "model-package", "state-changed"), account.name, str(decided.crn), {
        "group": group.name, "version": decided.version, "status": str(status),
        "previous_status": str(package.status), "actor": ctx.identity.principal,
        "comment": cmd.comment[:MAX_TEXT], "digests": list(decided.digests)}))
    return decided


def _status(value: str) -> ApprovalStatus:
    try:
        return ApprovalStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in ApprovalStatus)
        raise ValidationError(f"unknown status {value!r}: use one of {allowed}", field="status") from None


def _int_cursor(after: str | None) -> int | None:
    try:
        return int(after) if after else None
    except ValueError:
        raise ValidationError("invalid cursor", field="cursor") from None


def _pairs(items: tuple[tuple[str, str], ...], field: str) -> tuple[tuple[str, str], ...]:
    if len(items) > MAX_ITEMS:
        raise ValidationError(f"at most {MAX_ITEMS} {field}", field=field)
    for key, value in items:
        if not key or len(key) > 128 or len(value) > 1024:
            raise ValidationError(f"{field}: keys are 1-128 characters, values at most 1024", field=field)
    return tuple(sorted(dict(items).items()))


def _metrics(items: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
    _pairs(tuple((name, "") for name, _ in items), "metrics")  # the same limits on names
    for name, value in items:
        if not math.isfinite(value):
            raise ValidationError(f"metric {name} must be a finite number", field=f"metrics.{name}")
    return tuple(sorted(dict(items).items()))


def _signature(doc: dict[str, Any] | None) -> Signature | None:
    if doc is None:
        return None

    def columns(key: str) -> tuple[ColumnSpec, ...]:
        raw = doc.get(key, [])
        if not isinstance(raw, list) or len(raw) > 10_000:
            raise ValidationError(f"signature.{key} must be a list of columns", field=f"signature.{key}")
        out = []
        for i, col in enumerate(raw):
            if not (isinstance(col, dict) and isinstance(col.get("name"), str) and isinstance(col.get("dtype"), str)):
                raise ValidationError(f"signature.{key}[{i}] needs a name and a dtype", field=f"signature.{key}[{i}]")
            out.append(ColumnSpec(col["name"][:128], col["dtype"][:64]))
        return tuple(out)

    unknown = set(doc) - {"inputs", "outputs"}
    if unknown:
        raise ValidationError(f"unknown signature fields: {', '.join(sorted(unknown))}", field="signature")
    inputs = columns("inputs")
    if not inputs:
        raise ValidationError("a signature names at least one input", field="signature.inputs")
    return Signature(inputs, columns("outputs"))


HANDLERS: dict[type, Any] = {
    c.CreateModelPackageGroup: create_group,
    c.ListModelPackageGroups: list_groups,
    c.GetModelPackageGroup: get_group,
    c.UploadArtifact: upload_artifact,
    c.GetArtifact: get_artifact,
    c.RegisterModelPackage: register_package,
    c.ListModelPackages: list_packages,
    c.GetModelPackage: get_package,
    c.GetLatestModelPackage: get_latest_package,
    c.DecideModelPackage: decide_package,
}


# What the other handlers build on.
require_group = _require_group
group_resource = _group_resource
package_resource = _package_resource
artifact_store = _store
