"""Reading for the pages: the service layer's answers as the API's wire models, so a template
sees exactly what the API returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from charter.client import models as m
from charter.domain import commands as c
from charter.domain.authz import Action, Decision
from charter.entrypoints.api import convert
from charter.entrypoints.console.web import Console
from charter.errors import CharterError

PENDING = "PendingManualApproval"


def org(console: Console) -> m.OrganizationOut:
    view = console(c.GetOrg())
    return m.OrganizationOut(
        name=view.org.name, crn=str(view.org.crn), created_at=view.org.created_at,
        policy_revision=view.org.policy_revision,
        units=[convert.unit(u) for _, u in sorted(view.state.units.items())],
        accounts=[convert.account(a) for _, a in sorted(view.state.accounts.items())])


def account_kinds(console: Console) -> dict[str, str]:
    return {a.name: a.kind for a in org(console).accounts}


def all_pages(console: Console, make: Any, item: Any, limit: int = 200) -> list[Any]:
    """Every item of a paged query (``make(page)`` builds the query), converted by ``item``."""
    out: list[Any] = []
    after: str | None = None
    while True:
        result = console(make(c.PageRequest(after, limit)))
        out.extend(item(x) for x in result.items)
        after = result.next_after
        if after is None or len(out) >= 2000:
            return out


def groups(console: Console, account: str) -> list[m.GroupOut]:
    return all_pages(console, lambda p: c.ListModelPackageGroups(account, p), convert.group)


def packages(console: Console, account: str, group: str, status: str | None = None) -> list[m.PackageOut]:
    return all_pages(console, lambda p: c.ListModelPackages(account, group, status, p), convert.package)


def package(console: Console, account: str, group: str, version: int) -> m.PackageOut:
    return convert.package(console(c.GetModelPackage(account, group, version)))


def subscription(console: Console, account: str, sub_id: str) -> m.SubscriptionOut:
    return convert.subscription(console(c.GetSubscription(account, sub_id)), console.now)


def card(console: Console, account: str, group: str, version: int | None = None) -> m.ModelCardOut:
    view = console(c.GetModelCard(account, group, version))
    return convert.model_card(view.card, view.version)


def deployment_pipelines(console: Console, account: str) -> list[m.DeploymentPipelineOut]:
    return all_pages(console, lambda p: c.ListDeploymentPipelines(account, p), convert.deployment_pipeline)


def executions(console: Console, account: str, pipeline: str, limit: int = 50) -> list[m.DeploymentExecutionOut]:
    """The pipeline's latest executions, newest first."""
    page = console(c.ListDeploymentExecutions(account, pipeline, c.PageRequest(None, limit)))
    return [convert.deployment_execution(e) for e in page.items]


def execution(console: Console, account: str, pipeline: str, execution_id: str) -> m.DeploymentExecutionOut:
    return convert.deployment_execution(console(c.GetDeploymentExecution(account, pipeline, execution_id)))


def endpoints(console: Console, account: str) -> list[m.EndpointOut]:
    return all_pages(console, lambda p: c.ListEndpoints(account, p), convert.endpoint)


AWAITING = "AwaitingApproval"


@dataclass
class Item:
    """Something waiting for the caller, with what it may do about it."""

    kind: str
    key: str
    title: str
    subject: Any
    url: str
    decide_url: str
    seen: str
    approve: Decision
    reject: Decision
    notes: list[str] = field(default_factory=list)

    @property
    def actionable(self) -> bool:
        return self.approve.allowed or self.reject.allowed


def _quiet(fn: Any, *args: Any) -> list[Any]:
    """A list the caller may not read (or that this account does not keep) is simply not shown."""
    try:
        return list(fn(*args))
    except CharterError:
        return []


def inbox(console: Console) -> list[Item]:
    kinds = account_kinds(console)
    found: list[tuple[str, str, str, Any, str, str, str, tuple[str, str], c.Ability]] = []
    for account in console.accounts:
        for group in _quiet(groups, console, account):
            for pkg in _quiet(packages, console, account, group.name, PENDING):
                found.append(("package", f"package-{account}-{pkg.group}-{pkg.version}",
                              f"Model package {pkg.group}/{pkg.version} in {account}", pkg,
                              f"/accounts/{account}/registry/{pkg.group}/{pkg.version}",
                              f"/accounts/{account}/registry/{pkg.group}/{pkg.version}/decide", pkg.status,
                              (Action.APPROVE_PACKAGE, Action.REJECT_PACKAGE),
                              c.Ability("", account, pkg.group, str(pkg.version))))
        if kinds.get(account) == "data-governance":
            subs = _quiet(lambda a: all_pages(console, lambda p: c.ListSubscriptions(a, "Pending", None, p),
                                              lambda s: convert.subscription(s, console.now)), account)
            for sub in subs:
                if sub.account != account:
                    continue
                found.append(("subscription", f"subscription-{sub.id}",
                              f"Subscription of {sub.subscriber} to {sub.dataset}", sub,
                              f"/accounts/{account}/data/subscriptions/{sub.id}",
                              f"/accounts/{account}/data/subscriptions/{sub.id}/decide", sub.status,
                              (Action.APPROVE_SUBSCRIPTION, Action.REJECT_SUBSCRIPTION),
                              c.Ability("", account, "", sub.id)))
        if kinds.get(account) == "shared-services":
            cards = _quiet(lambda a: all_pages(console, lambda p: c.ListModelCards(a, p), convert.model_card), account)
            for mc in cards:
                if mc.status != "PendingReview":
                    continue
                found.append(("card", f"card-{account}-{mc.group}", f"Model card of {mc.group} (version {mc.version})",
                              mc, f"/accounts/{account}/cards/{mc.group}", f"/accounts/{account}/cards/{mc.group}/decide",
                              str(mc.version), (Action.APPROVE_CARD, Action.REJECT_CARD),
                              c.Ability("", account, mc.group)))
            for pipeline in _quiet(deployment_pipelines, console, account):
                for ex in _quiet(executions, console, account, pipeline.name, 10):
                    if ex.status != AWAITING:
                        continue
                    url = f"/accounts/{account}/deployments/{pipeline.name}/executions/{ex.id}"
                    found.append(("deployment", f"deployment-{ex.id}",
                                  f"Production deployment of {ex.package.rsplit(':', 1)[-1].removeprefix('model-package/')}"
                                  f" by {pipeline.name}", ex, url, f"{url}/decide", ex.status,
                                  (Action.APPROVE_DEPLOYMENT, Action.REJECT_DEPLOYMENT),
                                  c.Ability("", account, pipeline.name, ex.id)))
    requests = _quiet(lambda: all_pages(console, lambda p: c.ListAccountRequests("Pending", p),
                                        convert.account_request))
    for req in requests:
        found.append(("account-request", f"request-{req.id}", f"Account request for {req.account}", req,
                      f"/org/requests/{req.id}", f"/org/requests/{req.id}/decide", req.status,
                      (Action.APPROVE_ACCOUNT_REQUEST, Action.REJECT_ACCOUNT_REQUEST),
                      c.Ability("", "", "", req.id)))
    asked: list[c.Ability] = []
    for *_, actions, where in found:
        asked.extend(c.Ability(str(a), where.account, where.name, where.key) for a in actions)
    decisions = console.can(*asked) if asked else ()
    items = []
    for index, (kind, key, title, subject, url, decide_url, seen, _, _) in enumerate(found):
        approve, reject = decisions[2 * index], decisions[2 * index + 1]
        item = Item(kind, key, title, subject, url, decide_url, seen, approve, reject)
        if item.actionable:
            items.append(item)
    return items
