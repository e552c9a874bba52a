"""Promotion: an approved package of a workload account becomes a central package.

Two messages, because bytes and rows have different costs:

1. ``CopyPackageArtifacts`` copies every artifact into the central account's store, each hashed
   again on arrival. It runs outside any write transaction, so a 1 GB model never holds the write
   lock. Copies are content-addressed and atomic: repeating one costs a ``stat``.
2. ``PromoteModelPackage`` then registers the central package in one transaction, with its audit
   record, its events and the model card's new version. It is idempotent, keyed on the source
   package's CRN (the package's ``origin``, unique per account in the store): a second delivery of
   the same approval, or a retry after a crash, finds the package it made and changes nothing.

The caller is the principal a rule's handler target runs as (``runAs``, the article's Lambda
execution role), so every step is authorized by the same policies as a person's request: it must
read the source package (the source group's resource policy names the central account) and write
the central registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from charter.domain import commands as c
from charter.domain.artifacts import BlobInfo
from charter.domain.authz import Action
from charter.domain.crn import CRN
from charter.domain.events import Event, event_type
from charter.domain.names import check_name
from charter.domain.org import Account
from charter.domain.registry import ApprovalStatus, ModelPackage, ModelPackageGroup
from charter.errors import InvalidTransition, NotFound, ValidationError
from charter.services.event_handlers import Invocation, register_handler
from charter.services.handlers import cards, registry
from charter.services.messagebus import HandlerContext, MessageBus


@dataclass(frozen=True, slots=True)
class Promotion:
    package: ModelPackage
    created: bool
    """False when the source package had been promoted before (a repeated delivery)."""
    card_version: int | None = None


def central_group_name(group: str, source_account: str) -> str:
    """``<group>-<source account>``: central groups of two dev accounts never collide."""
    return check_name(f"{group}-{source_account}", "central model package group")


def _source(ctx: HandlerContext, text: str, central: Account) -> tuple[Account, ModelPackageGroup, ModelPackage]:
    crn = CRN.parse(text)
    if (crn.service, crn.type) != ("registry", "model-package") or crn.version is None:
        raise ValidationError(f"{text} does not name a model package", field="source")
    if crn.account == central.name:
        raise ValidationError(f"{text} is already in {central.name}", field="source")
    try:
        version = int(crn.version)
    except ValueError:
        raise ValidationError(f"{text} has no version number", field="source") from None
    account = ctx.account(crn.account)
    group = registry.require_group(ctx, account, crn.name)
    package = ctx.uow.registry.get_package(account.name, group.name, version)
    if package is None:
        ctx.authorize(Action.LIST_PACKAGES, registry.group_resource(ctx, account, group))
        raise NotFound(f"no model package {text}", source=text)
    ctx.authorize(Action.READ_PACKAGE, registry.package_resource(ctx, account, group, package))
    return account, group, package


def _check_approved(package: ModelPackage, digests: tuple[str, ...]) -> None:
    """Only an approval in force, on the artifacts it was made on, is promoted."""
    approval = package.approval
    if package.status is not ApprovalStatus.APPROVED or approval is None:
        raise InvalidTransition(f"{package.crn} is {package.status}, not approved on its current "
                                "artifacts", package=str(package.crn), status=str(package.status))
    if digests and tuple(sorted(digests)) != package.digests:
        raise InvalidTransition(f"{package.crn}'s artifacts changed after the approval being "
                                "promoted", package=str(package.crn))


def _central_group(ctx: HandlerContext, central: Account, source: ModelPackageGroup) -> ModelPackageGroup:
    name = central_group_name(source.name, source.account)
    group = ModelPackageGroup(central.name, name, source.description, source.tags,
                              tuple(r for r in source.readers if r != central.name))
    return ctx.uow.registry.get_group(central.name, name) or group


def copy_artifacts(cmd: c.CopyPackageArtifacts, ctx: HandlerContext) -> list[BlobInfo]:
    central = ctx.account(cmd.account)
    account, group, package = _source(ctx, cmd.source, central)
    _check_approved(package, ())
    target = _central_group(ctx, central, group)
    ctx.authorize(Action.PROMOTE_PACKAGE, registry.group_resource(ctx, central, target))
    store = registry.artifact_store(ctx)
    copied = [store.copy(account.name, central.name, a.sha256) for a in package.artifacts]
    ctx.audit(Action.PROMOTE_PACKAGE, registry.group_resource(ctx, central, target),
              step="copy-artifacts", source=str(package.crn), digests=list(package.digests),
              bytes=sum(b.size for b in copied))
    return copied


def promote(cmd: c.PromoteModelPackage, ctx: HandlerContext) -> Promotion:
    central = ctx.account(cmd.account)
    account, group, source = _source(ctx, cmd.source, central)
    target = _central_group(ctx, central, group)
    resource = registry.group_resource(ctx, central, target)
    ctx.authorize(Action.PROMOTE_PACKAGE, resource)
    done = ctx.uow.registry.find_promoted(central.name, str(source.crn))
    if done is not None:
        ctx.audit(Action.PROMOTE_PACKAGE, registry.package_resource(ctx, central, target, done),
                  source=str(source.crn), event=cmd.event_id, already_promoted=True)
        return Promotion(done, created=False)
    _check_approved(source, cmd.digests)
    store = registry.artifact_store(ctx)
    for artifact in source.artifacts:
        stored = store.stat(central.name, artifact.sha256)
        if stored is None or stored.size != artifact.size:
            raise ValidationError(f"{artifact.path} of {source.crn} has not been copied to "
                                  f"{central.name}: copy the artifacts first", field="artifacts",
                                  path=artifact.path)
    if ctx.uow.registry.get_group(central.name, target.name) is None:
        ctx.authorize(Action.CREATE_GROUP, resource)
        registry.add_group(ctx, target, resource, audit={"source": str(group.crn)},
                           data={"origin": str(group.crn)})
    version = ctx.uow.registry.allocate_version(central.name, target.name)
    package = ModelPackage(
        account=central.name, group=target.name, version=version, format=source.format,
        artifacts=source.artifacts, lineage=source.lineage, created_at=ctx.clock.now(),
        signature=source.signature, metrics=source.metrics, sample_payload=source.sample_payload,
        description=source.description, tags=source.tags, origin=str(source.crn),
    )
    ctx.uow.registry.add_package(package)
    card, card_version = cards.record_package(ctx, package)
    approval = source.approval
    ctx.audit(Action.PROMOTE_PACKAGE, registry.package_resource(ctx, central, target, package),
              source=str(source.crn), version=version, digests=list(package.digests),
              event=cmd.event_id, source_approved_by=approval.actor if approval else None,
              card=str(card.crn), card_version=card_version,
              # A card under review or archived is not changed behind its reviewers' backs.
              card_unchanged_because=None if card_version is not None else str(card.status))
    ctx.emit(Event(event_type("registry", "model-package", "registered"), central.name, str(package.crn), {
        "group": target.name, "version": version, "status": str(package.status),
        "digests": list(package.digests), "registered_by": ctx.identity.principal,
        "origin": str(source.crn)}))
    return Promotion(package, created=True, card_version=card_version)


APPROVED_PACKAGE = event_type("registry", "model-package", "state-changed")


def promote_on_approval(bus: MessageBus, invocation: Invocation) -> None:
    """The ``promote-model-package`` handler: an approval arriving on the central bus is copied,
    then registered, as the target's ``runAs`` principal. Both steps are idempotent, so a repeated
    delivery (at least once) or a retry after a crash ends with the one central package."""
    event = invocation.event
    if invocation.run_as is None:
        raise ValidationError(f"rule {invocation.bus}/{invocation.rule}: promote-model-package acts as "
                              "a service principal; give the target a runAs", rule=invocation.rule)
    if event.type != APPROVED_PACKAGE or event.data.get("status") != str(ApprovalStatus.APPROVED):
        raise ValidationError(f"promote-model-package takes approved packages, not {event.type} "
                              f"{event.data.get('status')!r}", event=event.id)
    digests = event.data.get("digests") or []
    if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
        raise ValidationError("the event's digests are not a list of digests", event=event.id)
    # The bus policy admitted the event for its source; the package it names must be that account's,
    # or an admitted account could have another account's package promoted in its name.
    try:
        subject_account = CRN.parse(event.subject).account
    except ValidationError:
        raise ValidationError(f"the event's subject {event.subject!r} is not a CRN", event=event.id) from None
    if subject_account != event.source:
        raise ValidationError(f"the event from {event.source} names a package of {subject_account}; an account "
                              "promotes only its own packages", event=event.id, source=event.source,
                              subject=event.subject)
    bus.handle(c.CopyPackageArtifacts(event.subject, invocation.bus), invocation.run_as)
    bus.handle(c.PromoteModelPackage(event.subject, invocation.bus, tuple(digests), event.id),
               invocation.run_as)


register_handler("promote-model-package", promote_on_approval)


HANDLERS: dict[type, Any] = {
    c.CopyPackageArtifacts: copy_artifacts,
    c.PromoteModelPackage: promote,
}
