"""Domain objects to wire models."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from charter.client import models as m
from charter.domain.account_requests import AccountRequest
from charter.domain.artifacts import BlobInfo
from charter.domain.audit import AuditRecord, VerifyResult
from charter.domain.card_json import evaluation_to_json, training_to_json
from charter.domain.cards import ModelCard, to_document
from charter.domain.catalog import Grant, Portfolio, Product, ProductVersion, Share
from charter.domain.datasets import Dataset, DatasetRead, DatasetVersion, Subscription
from charter.domain.deliveries import Delivery
from charter.domain.deployments import DeploymentPipeline, Execution
from charter.domain.endpoints import Capture, Endpoint, Revision
from charter.domain.identity import ApiToken, Session
from charter.domain.org import (
    Account,
    EventRule,
    EventTarget,
    OrgPolicy,
    OrgUnit,
    Principal,
    RoleBinding,
    RoleDefinition,
)
from charter.domain.pipelines import Pipeline, PipelineRun
from charter.domain.plan import Change
from charter.domain.projects import Project, Workspace
from charter.domain.registry import ModelPackage, ModelPackageGroup
from charter.errors import ValidationError
from charter.services.handlers.catalog import Imported, PortfolioDetail
from charter.services.handlers.projects import ProjectResult
from charter.services.pipeline_spec import load_definition
from charter.services.ports import Page


def encode_cursor(after: str | None) -> str | None:
    if after is None:
        return None
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = data["after"]
        if not isinstance(after, str):
            raise TypeError
        return after
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ValidationError("invalid cursor; pass back the next_cursor of a previous page",
                              field="cursor") from None


def page(result: Page[Any], item: Callable[[Any], Any]) -> m.Page[Any]:
    """A service page as a wire page: items converted, the next key as an opaque cursor."""
    return m.Page(items=[item(x) for x in result.items], next_cursor=encode_cursor(result.next_after))


def unit(u: OrgUnit) -> m.OrgUnitOut:
    return m.OrgUnitOut(name=u.name, parent=u.parent, description=u.description, crn=str(u.crn))


def account(a: Account) -> m.AccountOut:
    return m.AccountOut(name=a.name, kind=str(a.kind), stage=str(a.stage) if a.stage else None,
                        ou=a.ou, description=a.description, crn=str(a.crn))


def principal(p: Principal) -> m.PrincipalOut:
    return m.PrincipalOut(name=p.name, kind=str(p.kind), display_name=p.display_name, email=p.email,
                          crn=str(p.crn))


def bindings(by_account: dict[str, set[str]]) -> dict[str, list[str]]:
    return {acc: sorted(roles) for acc, roles in sorted(by_account.items())}


def binding(b: RoleBinding) -> m.RoleBindingOut:
    return m.RoleBindingOut(principal=b.principal, account=b.account, role=b.role, crn=str(b.crn))


def role(r: RoleDefinition) -> m.RoleOut:
    return m.RoleOut(name=r.name, description=r.description, builtin=r.builtin)


def policy(p: OrgPolicy, source: str) -> m.PolicyOut:
    return m.PolicyOut(id=p.id, description=p.description, text=p.text, source=source)


def change(c: Change) -> m.ChangeOut:
    return m.ChangeOut(kind=c.kind, action=str(c.action), name=c.name, summary=c.describe(),
                       before=c.before, after=c.after)


def token(t: ApiToken, now: datetime) -> m.TokenOut:
    return m.TokenOut(id=t.id, principal=t.principal, description=t.description,
                      created_at=t.created_at, created_by=t.created_by, expires_at=t.expires_at,
                      revoked_at=t.revoked_at, state=t.state(now), crn=str(t.crn))


def session(s: Session) -> m.SessionOut:
    return m.SessionOut(id=s.id, principal=s.principal, account=s.account, role=s.role,
                        created_at=s.created_at, expires_at=s.expires_at, crn=str(s.crn))


def record(r: AuditRecord) -> m.AuditRecordOut:
    return m.AuditRecordOut(**r.to_dict() | {"time": r.time})


def verify(v: VerifyResult) -> m.VerifyOut:
    return m.VerifyOut(**v.to_dict())


def group(g: ModelPackageGroup) -> m.GroupOut:
    return m.GroupOut(account=g.account, name=g.name, description=g.description, tags=dict(g.tags),
                      readers=list(g.readers), crn=str(g.crn))


def blob(b: BlobInfo) -> m.BlobOut:
    return m.BlobOut(account=b.account, sha256=b.sha256, size=b.size)


def package_document(p: ModelPackage) -> dict[str, Any]:
    """A package as ``PackageOut``'s JSON, built as plain data: the registry's reads answer with
    it straight (pydantic-core serializes it as the model would, without validating 50 models a
    page); ``package`` validates the same data into the model."""
    signature = None if p.signature is None else {
        "inputs": [{"name": c.name, "dtype": c.dtype} for c in p.signature.inputs],
        "outputs": [{"name": c.name, "dtype": c.dtype} for c in p.signature.outputs]}
    lineage = p.lineage
    return {
        "account": p.account, "group": p.group, "version": p.version, "status": p.status.value,
        "format": p.format.value,
        "artifacts": [{"path": a.path, "size": a.size, "sha256": a.sha256} for a in p.artifacts],
        "signature": signature, "metrics": dict(p.metrics), "sample_payload": p.sample_payload,
        "description": p.description, "tags": dict(p.tags), "origin": p.origin,
        "lineage": {"registered_by": lineage.registered_by, "run": lineage.run,
                    "run_started_by": lineage.run_started_by, "datasets": list(lineage.datasets),
                    "product_version": lineage.product_version, "parameters": dict(lineage.parameters)},
        "history": [{"status": h.status.value, "previous": h.previous.value if h.previous else None,
                     "actor": h.actor, "comment": h.comment, "time": h.time, "digests": list(h.digests)}
                    for h in p.history],
        "created_at": p.created_at, "crn": str(p.crn),
    }


def package(p: ModelPackage) -> m.PackageOut:
    return m.PackageOut.model_validate(package_document(p))


def page_document(result: Page[Any], item: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """A service page as the JSON of ``m.Page``, from plain-data items (``package_document``)."""
    return {"items": [item(x) for x in result.items], "next_cursor": encode_cursor(result.next_after)}


def model_card(card: ModelCard, version: int | None = None) -> m.ModelCardOut:
    shown = card.version(version if version is not None else card.count)
    status = card.status_of(shown.number)
    return m.ModelCardOut(
        account=card.account, group=card.group, crn=str(card.crn), status=card.status.value,
        approved_version=card.approved_version, latest_version=card.count, version=shown.number,
        version_status=str(status) if status is not None else "Superseded",
        version_crn=str(card.version_crn(shown.number)), author=shown.author, time=shown.time,
        summary=shown.summary, package=str(shown.package) if shown.package else None,
        document=to_document(shown.content), training=training_to_json(shown.training),
        evaluation=evaluation_to_json(shown.evaluation),
        versions=[m.CardVersionOut(version=v.number, author=v.author, time=v.time, summary=v.summary,
                                   package=str(v.package) if v.package else None) for v in card.every_version()],
        history=[m.CardReviewOut(status=str(h.status), previous=str(h.previous), actor=h.actor,
                                 comment=h.comment, time=h.time, version=h.version) for h in card.history],
    )


def event_target(t: EventTarget) -> m.EventTargetOut:
    return m.EventTargetOut(kind=str(t.kind), value=t.value, run_as=t.run_as)


def event_rule(r: EventRule) -> m.EventRuleOut:
    return m.EventRuleOut(account=r.account, name=r.name, description=r.description, enabled=r.enabled,
                          pattern=json.loads(r.pattern), targets=[event_target(t) for t in r.targets],
                          crn=str(r.crn))


def delivery(d: Delivery) -> m.DeliveryOut:
    return m.DeliveryOut(id=d.id, bus=d.bus, rule=d.rule, target=event_target(d.target), status=str(d.status),
                         attempts=d.attempts, created_at=d.created_at, updated_at=d.updated_at,
                         next_attempt_at=d.next_attempt_at, last_error=d.last_error,
                         event=d.event.to_cloudevent(), crn=str(d.crn))


def dataset_version(v: DatasetVersion) -> m.DatasetVersionOut:
    return m.DatasetVersionOut(
        account=v.account, dataset=v.dataset, version=v.version, format=v.format.value, sha256=v.sha256,
        size=v.size, columns=[m.ColumnOut(name=col.name, dtype=col.dtype) for col in v.columns],
        rows=v.rows, registered_by=v.registered_by, created_at=v.created_at, crn=str(v.crn))


def dataset(d: Dataset, latest: DatasetVersion | None = None) -> m.DatasetOut:
    return m.DatasetOut(account=d.account, name=d.name, description=d.description, owner=d.owner,
                        tags=dict(d.tags), created_at=d.created_at, crn=str(d.crn),
                        latest=dataset_version(latest) if latest else None)


def subscription(s: Subscription, now: datetime) -> m.SubscriptionOut:
    g = s.grant
    return m.SubscriptionOut(
        id=s.id, account=s.account, dataset=s.dataset, dataset_crn=str(s.dataset_crn), subscriber=s.subscriber,
        project=s.project, requested_by=s.requested_by, reason=s.reason, status=s.status.value,
        decided_by=s.decided_by, decided_at=s.decided_at, comment=s.comment, expires_at=s.expires_at,
        revoked_by=s.revoked_by, revoked_at=s.revoked_at, created_at=s.created_at,
        grant=None if g is None else m.GrantOut(account=g.account, project=g.project, expires_at=g.expires_at,
                                                revoked_at=g.revoked_at, active=g.active(now)),
        history=[m.SubscriptionChangeOut(status=str(h.status), previous=str(h.previous) if h.previous else None,
                                         actor=h.actor, comment=h.comment, time=h.time) for h in s.history],
        crn=str(s.crn))


def dataset_read(r: DatasetRead) -> m.DatasetReadOut:
    return m.DatasetReadOut(id=r.id, account=r.account, dataset=r.dataset, version=r.version,
                            version_crn=str(r.version_crn), reader=r.reader, for_account=r.for_account,
                            project=r.project, run=r.run, subscription=r.subscription, time=r.time)


def portfolio(p: Portfolio) -> m.PortfolioOut:
    return m.PortfolioOut(account=p.account, name=p.name, description=p.description, provider=p.provider,
                          crn=str(p.crn))


def share(s: Share) -> m.ShareOut:
    return m.ShareOut(account=s.account, portfolio=s.portfolio, target=s.target)


def grant(g: Grant) -> m.PortfolioGrantOut:
    return m.PortfolioGrantOut(account=g.account, portfolio=g.portfolio, pattern=g.pattern)


def portfolio_detail(d: PortfolioDetail) -> m.PortfolioDetail:
    return m.PortfolioDetail(**portfolio(d.portfolio).model_dump(), shares=[share(s) for s in d.shares],
                             grants=[grant(g) for g in d.grants])


def product(p: Product) -> m.ProductOut:
    return m.ProductOut(account=p.account, portfolio=p.portfolio, name=p.name, kind=p.kind.value,
                        description=p.description, latest_version=p.latest_version, crn=str(p.crn))


def product_version(v: ProductVersion) -> m.ProductVersionOut:
    s = v.source
    return m.ProductVersionOut(
        account=v.account, portfolio=v.portfolio, product=v.product, version=v.version,
        kind=v.spec.kind.value, description=v.spec.description, parameters=v.spec.parameters,
        provisions=v.spec.provisions,
        files=[m.ProductFileOut(path=f.path, size=f.size, sha256=f.sha256) for f in v.files],
        content_digest=v.content_digest,
        source=m.SourceOut(kind=s.kind.value, repository=s.repository, ref=s.ref, commit=s.commit, path=s.path),
        published_by=v.published_by, published_at=v.published_at, crn=str(v.crn))


def imported(i: Imported) -> m.ImportedOut:
    return m.ImportedOut(account=i.account, roles=list(i.roles), portfolios=[
        m.ImportedPortfolioOut(portfolio=portfolio(e.imported.portfolio),
                               grants=[g.pattern for g in e.imported.grants],
                               launchable=[product(p) for p in e.launchable])
        for e in i.portfolios])


def account_request(r: AccountRequest) -> m.AccountRequestOut:
    return m.AccountRequestOut(
        id=r.id, account=r.account, ou=r.ou, kind=str(r.kind), stage=str(r.stage) if r.stage else None,
        blueprint=r.blueprint, reason=r.reason, requested_by=r.requested_by, created_at=r.created_at,
        status=r.status.value, decided_by=r.decided_by, decided_at=r.decided_at, comment=r.comment,
        crn=str(r.crn))


def project(p: Project, notes: tuple[str, ...] = ()) -> m.ProjectOut:
    return m.ProjectOut(
        account=p.account, name=p.name, crn=str(p.crn), product_account=p.product_account, product=p.product,
        version=p.version, product_crn=str(p.product_crn), parameters=p.parameters, workspace=p.workspace,
        launched_by=p.launched_by, status=p.status.value,
        resources=[m.ProvisionedResourceOut(kind=r.kind.value, crn=r.crn, name=r.name, details=r.details)
                   for r in p.resources],
        history=[m.ProjectUpdateOut(at=h.at, by=h.by, from_version=h.from_version, to_version=h.to_version,
                                    parameters=h.parameters, added=list(h.added), changed=list(h.changed),
                                    removed=list(h.removed), kept=list(h.kept), notes=list(h.notes))
                 for h in p.history],
        created_at=p.created_at, updated_at=p.updated_at, notes=list(notes))


def project_result(r: ProjectResult) -> m.ProjectOut:
    return project(r.project, r.notes)


def workspace(w: Workspace) -> m.WorkspaceOut:
    return m.WorkspaceOut(
        account=w.account, name=w.name, crn=str(w.crn), team=w.team, product_account=w.product_account,
        product=w.product, version=w.version, product_crn=str(w.product_crn), parameters=w.parameters,
        members=[m.WorkspaceMemberOut(principal=x.principal, role=x.role, bound=x.bound) for x in w.members],
        cost_centre=w.cost_centre, business_unit=w.business_unit, environment=w.environment, tags=dict(w.tags),
        data_access=list(w.data_access), launched_by=w.launched_by, status=w.status.value,
        created_at=w.created_at, updated_at=w.updated_at)


def pipeline(p: Pipeline) -> m.PipelineOut:
    return m.PipelineOut(account=p.account, name=p.name, version=p.version, digest=p.digest,
                         code_sha256=p.code_sha256, definition=p.definition, defaults=dict(p.defaults),
                         created_by=p.created_by,
                         created_at=p.created_at, crn=str(p.crn))


def pipeline_run(r: PipelineRun) -> m.PipelineRunOut:
    definition = load_definition(r.definition, name=r.pipeline)
    steps = [m.StepStateOut(
        name=s.name, kind=str(definition.step(s.name).kind), upstream=sorted(definition.step(s.name).upstream),
        status=str(s.status), attempts=s.attempts, started_at=s.started_at,
        finished_at=s.finished_at, outputs=dict(s.outputs), metrics=dict(s.metrics), cached=s.cached,
        error=s.error) for s in r.steps]
    return m.PipelineRunOut(
        id=r.id, account=r.account, pipeline=r.pipeline, digest=r.digest, code_sha256=r.code_sha256,
        parameters=dict(r.parameters), started_by=r.started_by, status=str(r.status),
        reason=r.reason, created_at=r.created_at, started_at=r.started_at, finished_at=r.finished_at,
        cancel_requested=r.cancel_requested, layers=definition.layers(), steps=steps, crn=str(r.crn))


def endpoint(e: Endpoint, workers: list[dict[str, Any]] | None = None) -> m.EndpointOut:
    return m.EndpointOut(
        account=e.account, name=e.name, crn=str(e.crn), status=str(e.status),
        serving_revision=e.serving_revision, latest_revision=e.latest.number, created_by=e.created_by,
        created_at=e.created_at, revisions=[revision(r) for r in e.revisions],
        workers=[m.WorkerOut(**w) for w in workers or []])


def revision(r: Revision) -> m.RevisionOut:
    return m.RevisionOut(
        revision=r.number, status=str(r.status), status_reason=r.status_reason,
        variants=[m.VariantOut(name=v.name, package=v.package, weight=v.weight, format=v.format,
                               model_sha256=v.model_sha256,
                               inputs=None if v.inputs is None else [m.ColumnOut(name=c.name, dtype=c.dtype)
                                                                     for c in v.inputs])
                  for v in r.variants],
        replicas=r.replicas, capture_percent=r.capture_percent, created_by=r.created_by,
        created_at=r.created_at, reason=r.reason, finished_at=r.finished_at, rollback_of=r.rollback_of)


def capture(k: Capture) -> m.CaptureOut:
    return m.CaptureOut(sha256=k.sha256, records=k.records, size=k.size, created_at=k.created_at)


def deployment_pipeline(p: DeploymentPipeline) -> m.DeploymentPipelineOut:
    return m.DeploymentPipelineOut(
        account=p.account, name=p.name, crn=str(p.crn), project=p.project, model_group=p.model_group,
        test_account=p.test_account, prod_account=p.prod_account, endpoint=p.endpoint, run_as=p.run_as,
        integration_tests=p.tests.to_document(), approval=p.approval.to_document(), enabled=p.enabled,
        created_by=p.created_by, created_at=p.created_at)


def deployment_execution(e: Execution) -> m.DeploymentExecutionOut:
    current = e.current
    return m.DeploymentExecutionOut(
        id=e.id, account=e.account, pipeline=e.pipeline, crn=str(e.crn), trigger=str(e.trigger),
        event_id=e.event_id, package=e.package, central_approver=e.central_approver,
        status=str(e.status), reason=e.reason, current_stage=current.name if current else None,
        stages=[m.DeploymentStageOut(name=s.name, status=str(s.status), started_at=s.started_at,
                                     finished_at=s.finished_at, reason=s.reason, details=dict(s.details))
                for s in e.stages],
        approvals=[m.DeploymentApprovalOut(principal=a.principal, decision=str(a.decision), comment=a.comment,
                                           at=a.at, via=a.via) for a in e.approvals],
        approval_expires_at=e.approval_expires_at, rollbacks=[dict(r) for r in e.rollbacks],
        created_at=e.created_at, updated_at=e.updated_at)
