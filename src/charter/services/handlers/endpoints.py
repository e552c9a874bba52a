"""Endpoints: deploying a configuration (a new revision, rolled out blue/green by the serving
supervisor), rolling back, deleting, reading, and the decision that a caller may invoke one.

The handlers only record what should be served; the supervisor in ``charter server`` starts the
workers, health-checks them, and records how each rollout ended."""

from __future__ import annotations

from typing import Any

from charter.domain import commands as c
from charter.domain.authz import Action, Resource
from charter.domain.crn import CRN
from charter.domain.endpoints import (
    MAX_REASON,
    Capture,
    Endpoint,
    EndpointStatus,
    Revision,
    Variant,
    check_config,
    default_variant_name,
    new_endpoint,
)
from charter.domain.events import Event, event_type
from charter.domain.identity import Identity
from charter.domain.names import check_name
from charter.domain.org import MANAGEMENT_ACCOUNT, Account, Stage
from charter.domain.registry import ApprovalStatus
from charter.errors import InvalidTransition, NotFound, PermissionDenied, ValidationError
from charter.services.handlers.deployments import require_production_release
from charter.services.handlers.registry import (
    artifact_store,
    package_resource,
    reader_accounts,
    require_group,
)
from charter.services.messagebus import HandlerContext
from charter.services.ports import Page, paginate


def endpoint_resource(account: Account, name: str) -> Resource:
    return Resource(CRN(account.name, "endpoints", "endpoint", name), "Endpoint",
                    {"account_kind": str(account.kind), "stage": str(account.stage or "")})


def state_event(endpoint: Endpoint | None, previous: EndpointStatus | None, *, account: str, name: str,
                actor: str | None, revision: Revision | None = None, status: str | None = None) -> Event:
    """``endpoints.endpoint.state-changed``: the endpoint's status, and the revision concerned."""
    crn = CRN(account, "endpoints", "endpoint", name)
    data: dict[str, Any] = {
        "endpoint": name, "status": status or (str(endpoint.status) if endpoint else None),
        "previous_status": str(previous) if previous else None,
        "serving_revision": endpoint.serving_revision if endpoint else None,
        "actor": actor}
    if revision is not None:
        data.update(revision=revision.number, revision_status=str(revision.status),
                    reason=revision.status_reason, packages=list(revision.packages))
    return Event(event_type("endpoints", "endpoint", "state-changed"), account, str(crn), data)


def _reason(text: str) -> str:
    if not isinstance(text, str) or len(text) > MAX_REASON:
        raise ValidationError(f"the reason is a text of at most {MAX_REASON} characters", field="reason")
    return text


def _variant(ctx: HandlerContext, account: Account, spec: c.VariantSpec, *, require_approved: bool) -> Variant:
    """The variant serving ``spec.package``, once the package is found readable by the caller, its
    group's resource policy admits the endpoint's account and (for a new configuration) it is
    Approved."""
    try:
        crn = CRN.parse(spec.package)
    except ValidationError:
        raise ValidationError(f"{spec.package!r} is not a model package CRN "
                              "(crn:charter:<account>:registry:model-package/<group>/<version>)",
                              field="variants.package") from None
    if crn.service != "registry" or crn.type != "model-package" or crn.version is None \
            or not crn.version.isdigit():
        raise ValidationError(f"{spec.package} is not a model package CRN "
                              "(crn:charter:<account>:registry:model-package/<group>/<version>)",
                              field="variants.package")
    home = ctx.account(crn.account)
    group = require_group(ctx, home, crn.name)
    package = ctx.uow.registry.get_package(home.name, group.name, int(crn.version))
    if package is None:
        raise NotFound(f"no model package {spec.package}", package=spec.package)
    ctx.authorize(Action.READ_PACKAGE, package_resource(ctx, home, group, package))
    if home.name != account.name and account.name not in reader_accounts(group.readers, ctx.uow.org.load_state):
        raise PermissionDenied(f"the resource policy of {group.crn} does not admit {account.name}: "
                               f"its readers are {', '.join(group.readers) or 'none'}",
                               policy="group-resource-policy", resource=str(group.crn), account=account.name)
    if require_approved and package.status is not ApprovalStatus.APPROVED:
        raise InvalidTransition(f"{package.crn} is {package.status}: only Approved packages are served",
                                package=str(package.crn), status=str(package.status))
    model = next((a for a in package.artifacts if a.path.endswith(f".{package.format}")), None)
    if model is None:
        raise ValidationError(f"{package.crn} holds no {package.format} model file", package=str(package.crn))
    if artifact_store(ctx).stat(home.name, model.sha256) is None:
        raise NotFound(f"the model file of {package.crn} is missing from {home.name}'s artifact store",
                       package=str(package.crn), sha256=model.sha256)
    name = spec.name if spec.name is not None else default_variant_name(str(package.crn))
    return Variant(name, str(package.crn), spec.weight, str(package.format), model.sha256,
                   package.signature.inputs if package.signature else None, package.sample_payload)


def _add_revision(ctx: HandlerContext, account: Account, name: str, variants: tuple[Variant, ...],
                  replicas: int, capture_percent: float, reason: str, action: Action,
                  rollback_of: int | None = None) -> tuple[Endpoint, Revision]:
    existing = ctx.uow.endpoints.get(account.name, name, for_update=True)
    now = ctx.clock.now()
    number = existing.latest.number + 1 if existing else 1
    revision = Revision(number, variants, replicas, float(capture_percent), ctx.identity.principal, now,
                        reason, rollback_of=rollback_of)
    superseded: list[int] = []
    if existing is None:
        endpoint = new_endpoint(account.name, name, revision)
        ctx.uow.endpoints.add(endpoint)
    else:
        endpoint, superseded = existing.with_revision(revision)
        ctx.uow.endpoints.save(endpoint)
    ctx.audit(action, endpoint_resource(account, name), revision=number,
              variants=[{"name": v.name, "package": v.package, "weight": v.weight} for v in variants],
              replicas=replicas, capture_percent=capture_percent, reason=reason, superseded=superseded,
              **({"rollback_of": rollback_of} if rollback_of is not None else {}))
    ctx.emit(state_event(endpoint, existing.status if existing else None, account=account.name, name=name,
                         actor=ctx.identity.principal, revision=revision))
    return endpoint, revision


def deploy(cmd: c.DeployEndpoint, ctx: HandlerContext) -> Endpoint:
    account = ctx.account(cmd.account)
    name = check_name(cmd.name, "endpoint")
    ctx.authorize(Action.DEPLOY_ENDPOINT, endpoint_resource(account, name))
    reason = _reason(cmd.reason)
    if not cmd.variants:
        raise ValidationError("an endpoint serves at least one variant (a model package)", field="variants")
    variants = tuple(_variant(ctx, account, spec, require_approved=True) for spec in cmd.variants)
    check_config(variants, cmd.replicas, cmd.capture_percent)
    if account.stage is Stage.PROD:
        require_production_release(ctx, account, name, [v.package for v in variants])
    # Decided again last, so a refusal's audit record names the endpoint, not a package read.
    ctx.authorize(Action.DEPLOY_ENDPOINT, endpoint_resource(account, name))
    endpoint, _ = _add_revision(ctx, account, name, variants, cmd.replicas, cmd.capture_percent, reason,
                                Action.DEPLOY_ENDPOINT)
    return endpoint


def _require(ctx: HandlerContext, account: Account, name: str, action: Action, *,
             for_update: bool = False) -> Endpoint:
    ctx.authorize(action, endpoint_resource(account, name))
    found = ctx.uow.endpoints.get(account.name, name, for_update=for_update)
    if found is None:
        raise NotFound(f"no endpoint {name!r} in {account.name}", account=account.name, endpoint=name)
    return found


def rollback(cmd: c.RollbackEndpoint, ctx: HandlerContext) -> Endpoint:
    account = ctx.account(cmd.account)
    endpoint = _require(ctx, account, cmd.name, Action.ROLLBACK_ENDPOINT, for_update=True)
    reason = _reason(cmd.reason)
    source = endpoint.rollback_source()
    # Every package is read again as the caller (its group's policy may have changed); a package
    # rejected since is still served: a rollback restores what served before, quickly.
    variants = tuple(_variant(ctx, account, c.VariantSpec(v.package, v.weight, v.name), require_approved=False)
                     for v in source.variants)
    ctx.authorize(Action.ROLLBACK_ENDPOINT, endpoint_resource(account, endpoint.name))
    updated, _ = _add_revision(ctx, account, endpoint.name, variants, source.replicas, source.capture_percent,
                               reason or f"rollback to revision {source.number}", Action.ROLLBACK_ENDPOINT,
                               rollback_of=source.number)
    return updated


def delete(cmd: c.DeleteEndpoint, ctx: HandlerContext) -> Endpoint:
    account = ctx.account(cmd.account)
    endpoint = _require(ctx, account, cmd.name, Action.DELETE_ENDPOINT, for_update=True)
    reason = _reason(cmd.reason)
    ctx.uow.endpoints.delete(account.name, endpoint.name)
    ctx.audit(Action.DELETE_ENDPOINT, endpoint_resource(account, endpoint.name), reason=reason,
              revisions=len(endpoint.revisions), serving_revision=endpoint.serving_revision)
    ctx.emit(state_event(endpoint, endpoint.status, account=account.name, name=endpoint.name,
                         actor=ctx.identity.principal, status="Deleted"))
    return endpoint


def get(cmd: c.GetEndpoint, ctx: HandlerContext) -> Endpoint:
    account = ctx.account(cmd.account)
    return _require(ctx, account, cmd.name, Action.READ_ENDPOINT)


def list_endpoints(cmd: c.ListEndpoints, ctx: HandlerContext) -> Page[Endpoint]:
    account = ctx.account(cmd.account)
    ctx.authorize(Action.LIST_ENDPOINTS, endpoint_resource(account, "*"))
    items = ctx.uow.endpoints.list_endpoints(account.name, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda e: e.name)


def list_captures(cmd: c.ListEndpointCaptures, ctx: HandlerContext) -> Page[Capture]:
    account = ctx.account(cmd.account)
    endpoint = _require(ctx, account, cmd.name, Action.LIST_ENDPOINT_CAPTURES)
    items = ctx.uow.endpoints.list_captures(account.name, endpoint.name, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda k: k.sha256)


def authorize_invocation(cmd: c.AuthorizeInvocation, ctx: HandlerContext) -> Identity:
    """The hot path's one decision: nothing is read but the (cached) account and the caller's roles.
    Returns the caller (whose credential's expiry bounds how long the decision may be reused)."""
    account = ctx.account(cmd.account)
    ctx.authorize(Action.INVOKE_ENDPOINT, endpoint_resource(account, cmd.name))
    return ctx.identity


def read_metrics(cmd: c.ReadMetrics, ctx: HandlerContext) -> None:
    ctx.authorize(Action.READ_METRICS, Resource(CRN(MANAGEMENT_ACCOUNT, "endpoints", "metrics", "all"),
                                                "Metrics", {}))


HANDLERS: dict[type, Any] = {
    c.DeployEndpoint: deploy,
    c.RollbackEndpoint: rollback,
    c.DeleteEndpoint: delete,
    c.GetEndpoint: get,
    c.ListEndpoints: list_endpoints,
    c.ListEndpointCaptures: list_captures,
    c.AuthorizeInvocation: authorize_invocation,
    c.ReadMetrics: read_metrics,
}
