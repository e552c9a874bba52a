"""In-memory implementations of the ports, for unit tests of the service layer."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from charter.domain.account_requests import AccountRequest, RequestStatus
from charter.domain.artifacts import BlobInfo, Digester, check_digest, verified
from charter.domain.audit import GENESIS_HASH, AuditHead, AuditRecord, Checkpoint
from charter.domain.blueprints import Blueprint
from charter.domain.cards import ModelCard
from charter.domain.catalog import (
    Grant,
    ImportedPortfolio,
    Portfolio,
    Product,
    ProductVersion,
    Share,
)
from charter.domain.commands import AuditFilter
from charter.domain.datasets import (
    Dataset,
    DatasetRead,
    DatasetVersion,
    Subscription,
    SubscriptionStatus,
)
from charter.domain.deliveries import Delivery, DeliveryStatus
from charter.domain.deployments import RUNNABLE, DeploymentPipeline, Execution, ExecutionStatus
from charter.domain.events import Event
from charter.domain.identity import ApiToken, Identity, Session
from charter.domain.names import check_name
from charter.domain.org import (
    Account,
    BusPolicy,
    EventRule,
    Organization,
    OrgPolicy,
    OrgState,
    OrgUnit,
    Principal,
    RoleBinding,
    RoleDefinition,
)
from charter.domain.pipelines import Pipeline, PipelineRun
from charter.domain.plan import builtin_roles
from charter.domain.projects import Project, Workspace
from charter.domain.registry import ApprovalStatus, ModelPackage, ModelPackageGroup
from charter.errors import Conflict, IntegrityError, NotFound, PermissionDenied, ValidationError
from charter.services.ports import Rollout, RolloutStatus


@dataclass
class Data:
    org: Organization | None = None
    state: OrgState = field(default_factory=OrgState)
    tokens: dict[str, ApiToken] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    records: list[AuditRecord] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    outbox: list[Event] = field(default_factory=list)
    groups: dict[tuple[str, str], tuple[ModelPackageGroup, int]] = field(default_factory=dict)
    packages: dict[tuple[str, str, int], ModelPackage] = field(default_factory=dict)
    cards: dict[tuple[str, str], ModelCard] = field(default_factory=dict)
    dispatched: set[str] = field(default_factory=set)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    datasets: dict[tuple[str, str], tuple[Dataset, int]] = field(default_factory=dict)
    dataset_versions: dict[tuple[str, str, int], DatasetVersion] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    dataset_reads: list[DatasetRead] = field(default_factory=list)
    portfolios: dict[tuple[str, str], Portfolio] = field(default_factory=dict)
    products: dict[tuple[str, str], Product] = field(default_factory=dict)
    product_versions: dict[tuple[str, str, int], ProductVersion] = field(default_factory=dict)
    shares: set[Share] = field(default_factory=set)
    grants: set[Grant] = field(default_factory=set)
    account_requests: dict[str, AccountRequest] = field(default_factory=dict)
    projects: dict[tuple[str, str], Project] = field(default_factory=dict)
    workspaces: dict[tuple[str, str], Workspace] = field(default_factory=dict)
    pipelines: dict[tuple[str, str], Pipeline] = field(default_factory=dict)
    deployment_pipelines: dict[tuple[str, str], DeploymentPipeline] = field(default_factory=dict)
    executions: dict[str, Execution] = field(default_factory=dict)
    pipeline_code: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    pipeline_runs: dict[str, PipelineRun] = field(default_factory=dict)
    step_cache: dict[tuple[str, str], tuple[dict[str, str], dict[str, Any]]] = field(default_factory=dict)


class FakeOrgRepository:
    def __init__(self, data: Data) -> None:
        self.d = data

    def get_org(self) -> Organization | None:
        return self.d.org

    def add_org(self, org: Organization) -> None:
        self.d.org = org

    def set_policy_revision(self, revision: int) -> None:
        assert self.d.org is not None
        self.d.org = replace(self.d.org, policy_revision=revision)

    def load_state(self) -> OrgState:
        s = copy.deepcopy(self.d.state)
        s.roles = {**builtin_roles(), **s.roles}
        return s

    def get_account(self, name: str) -> Account | None:
        return self.d.state.accounts.get(name)

    def list_accounts(self, after: str | None, limit: int) -> list[Account]:
        return [a for n, a in sorted(self.d.state.accounts.items()) if after is None or n > after][:limit]

    def get_principal(self, name: str) -> Principal | None:
        return self.d.state.principals.get(name)

    def list_principals(self, after: str | None, limit: int) -> list[Principal]:
        return [p for n, p in sorted(self.d.state.principals.items()) if after is None or n > after][:limit]

    def roles_of(self, principal: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for b in self.d.state.bindings:
            if b.principal == principal:
                out.setdefault(b.account, set()).add(b.role)
        return out

    def list_bindings(self, account: str) -> list[RoleBinding]:
        return sorted(b for b in self.d.state.bindings if b.account == account)

    def list_policies(self) -> list[OrgPolicy]:
        return [p for _, p in sorted(self.d.state.policies.items())]

    def put_unit(self, unit: OrgUnit) -> None:
        self.d.state.units[unit.name] = unit

    def put_account(self, account: Account) -> None:
        self.d.state.accounts[account.name] = account

    def put_principal(self, principal: Principal) -> None:
        self.d.state.principals[principal.name] = principal

    def put_role(self, role: RoleDefinition) -> None:
        self.d.state.roles[role.name] = role

    def delete_role(self, name: str) -> None:
        del self.d.state.roles[name]

    def add_binding(self, binding: RoleBinding) -> None:
        self.d.state.bindings.add(binding)

    def delete_binding(self, binding: RoleBinding) -> None:
        self.d.state.bindings.discard(binding)

    def put_policy(self, policy: OrgPolicy) -> None:
        self.d.state.policies[policy.id] = policy

    def delete_policy(self, policy_id: str) -> None:
        del self.d.state.policies[policy_id]

    def put_bus_policy(self, policy: BusPolicy) -> None:
        self.d.state.bus_policies[policy.account] = policy

    def delete_bus_policy(self, account: str) -> None:
        del self.d.state.bus_policies[account]

    def put_rule(self, rule: EventRule) -> None:
        self.d.state.rules[rule.key] = rule

    def delete_rule(self, account: str, name: str) -> None:
        del self.d.state.rules[f"{account}/{name}"]

    def list_rules(self, account: str) -> list[EventRule]:
        return [r for _, r in sorted(self.d.state.rules.items()) if r.account == account]

    def put_blueprint(self, blueprint: Blueprint) -> None:
        self.d.state.blueprints[blueprint.name] = blueprint

    def delete_blueprint(self, name: str) -> None:
        del self.d.state.blueprints[name]


class FakeAccountRequestRepository:
    def __init__(self, data: Data) -> None:
        self.d = data

    def add(self, request: AccountRequest) -> None:
        if request.id in self.d.account_requests:
            raise IntegrityError(f"duplicate account request {request.id}")
        self.d.account_requests[request.id] = request

    def get(self, request_id: str) -> AccountRequest | None:
        return self.d.account_requests.get(request_id)

    def save(self, request: AccountRequest) -> None:
        self.d.account_requests[request.id] = request

    def list(self, status: RequestStatus | None, requested_by: str | None, after: str | None,
             limit: int) -> list[AccountRequest]:
        return [r for i, r in sorted(self.d.account_requests.items())
                if (status is None or r.status is status) and (requested_by is None or r.requested_by == requested_by)
                and (after is None or i > after)][:limit]

    def pending_for(self, account: str) -> AccountRequest | None:
        return next((r for r in self.d.account_requests.values()
                     if r.account == account and r.status is RequestStatus.PENDING), None)


class FakeTokenRepository:
    def __init__(self, data: Data) -> None:
        self.d = data

    def add(self, token: ApiToken) -> None:
        self.d.tokens[token.id] = token

    def get(self, token_id: str) -> ApiToken | None:
        return self.d.tokens.get(token_id)

    def find(self, principal: str | None, after: str | None, limit: int) -> list[ApiToken]:
        return [t for i, t in sorted(self.d.tokens.items())
                if (principal is None or t.principal == principal) and (after is None or i > after)][:limit]

    def revoke(self, token_id: str, at: datetime) -> None:
        self.d.tokens[token_id] = replace(self.d.tokens[token_id], revoked_at=at)


class FakeSessionRepository:
    def __init__(self, data: Data) -> None:
        self.d = data

    def add(self, session: Session) -> None:
        self.d.sessions[session.id] = session

    def get(self, session_id: str) -> Session | None:
        return self.d.sessions.get(session_id)


class FakeAuditRepository:
    def __init__(self, data: Data) -> None:
        self.d = data

    def lock_head(self, *, fresh: bool = False) -> AuditHead:
        last = self.d.records[-1] if self.d.records else None
        checkpoint = self.d.checkpoints[-1].seq if self.d.checkpoints else 0
        return AuditHead(last.seq, last.hash, checkpoint) if last else AuditHead(0, GENESIS_HASH, checkpoint)

    def append(self, record: AuditRecord, head: AuditHead) -> bool:
        if head != self.lock_head():
            return False
        self.d.records.append(record)
        return True

    def find(self, flt: AuditFilter, after: int | None, limit: int) -> list[AuditRecord]:
        def keep(r: AuditRecord) -> bool:
            return all((
                flt.actor is None or r.actor == flt.actor,
                flt.account is None or r.account == flt.account,
                flt.resource is None or r.resource == flt.resource,
                flt.action is None or r.action == flt.action,
                flt.since is None or r.time >= flt.since,
                flt.until is None or r.time < flt.until,
                after is None or r.seq > after,
            ))
        return [r for r in self.d.records if keep(r)][:limit]

    def iterate(self) -> Iterator[AuditRecord]:
        return iter(list(self.d.records))

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.d.checkpoints.append(checkpoint)

    def checkpoints(self) -> list[Checkpoint]:
        return list(self.d.checkpoints)



class FakeRegistryRepository:
    def __init__(self, data: Data) -> None:
        self.d = data

    def get_group(self, account: str, name: str) -> ModelPackageGroup | None:
        found = self.d.groups.get((account, name))
        return found[0] if found else None

    def add_group(self, group: ModelPackageGroup, created_at: datetime, created_by: str) -> None:
        self.d.groups[(group.account, group.name)] = (group, 1)

    def set_readers(self, account: str, name: str, readers: tuple[str, ...]) -> None:
        group, version = self.d.groups[(account, name)]
        self.d.groups[(account, name)] = (replace(group, readers=readers), version)

    def list_groups(self, account: str, after: str | None, limit: int) -> list[ModelPackageGroup]:
        return [grp for (a, n), (grp, _) in sorted(self.d.groups.items())
                if a == account and (after is None or n > after)][:limit]

    def allocate_version(self, account: str, group: str) -> int:
        grp, version = self.d.groups[(account, group)]
        self.d.groups[(account, group)] = (grp, version + 1)
        return version

    def add_package(self, package: ModelPackage) -> None:
        if package.origin is not None and self.find_promoted(package.account, package.origin):
            raise RuntimeError(f"unique origin violated: {package.origin}")  # as the DB's index does
        self.d.packages[(package.account, package.group, package.version)] = package

    def find_promoted(self, account: str, origin: str) -> ModelPackage | None:
        return next((pkg for (a, _, _), pkg in self.d.packages.items()
                     if a == account and pkg.origin == origin), None)

    def get_package(self, account: str, group: str, version: int) -> ModelPackage | None:
        return self.d.packages.get((account, group, version))

    def list_packages(self, account: str, group: str, after: int | None, limit: int,
                      status: ApprovalStatus | None = None) -> list[ModelPackage]:
        return [pkg for (a, grp, v), pkg in sorted(self.d.packages.items())
                if a == account and grp == group and (after is None or v > after)
                and (status is None or pkg.status is status)][:limit]

    def latest_package(self, account: str, group: str, status: ApprovalStatus) -> ModelPackage | None:
        found = self.list_packages(account, group, None, 10**9, status)
        return found[-1] if found else None

    def save_decision(self, package: ModelPackage) -> None:
        self.d.packages[(package.account, package.group, package.version)] = package


class FakeCardRepository:
    """Cards in memory, with the SQL adapter's rule for saves: the stored card must be exactly one
    change behind the card saved (a version, a status change, or both), else Conflict."""

    def __init__(self, data: Data) -> None:
        self.d = data

    def get(self, account: str, group: str) -> ModelCard | None:
        return self.d.cards.get((account, group))

    def get_latest(self, account: str, group: str) -> ModelCard | None:
        card = self.d.cards.get((account, group))
        return None if card is None else replace(card, versions=card.versions[-1:], first=card.count)

    def documenting(self, account: str, group: str, package: str) -> int | None:
        card = self.d.cards.get((account, group))
        return next((x.number for x in card.versions if str(x.package) == package), None) if card else None

    def add(self, card: ModelCard) -> None:
        if (card.account, card.group) in self.d.cards:
            raise Conflict(f"{card.crn} already exists")
        if (card.account, card.group) not in self.d.groups:
            raise Conflict(f"{card.crn} documents no existing group")
        self.d.cards[(card.account, card.group)] = card

    def save(self, card: ModelCard) -> None:
        stored = self.d.cards.get((card.account, card.group))
        if stored is None:
            raise NotFound(f"{card.crn} does not exist")
        step = (card.count - stored.count, len(card.history) - len(stored.history))
        held = stored.versions[card.first - 1:]  # a card read with its latest version only holds no others
        if (step not in {(1, 0), (0, 1), (1, 1)} or card.history[:len(stored.history)] != stored.history
                or card.versions[:len(held)] != held):
            raise Conflict(f"{card.crn} changed since it was read")
        self.d.cards[(card.account, card.group)] = replace(card, versions=(*stored.versions[:card.first - 1],
                                                                           *card.versions), first=1)

    def list(self, account: str, after: str | None, limit: int) -> list[ModelCard]:
        return [card for (a, g), card in sorted(self.d.cards.items())
                if a == account and (after is None or g > after)][:limit]
class FakeDatasetRepository:
    def __init__(self, data: Data) -> None:
        self.d = data

    def get_dataset(self, account: str, name: str) -> Dataset | None:
        found = self.d.datasets.get((account, name))
        return found[0] if found else None

    def add_dataset(self, dataset: Dataset) -> None:
        if (dataset.account, dataset.name) in self.d.datasets:
            raise RuntimeError(f"duplicate dataset {dataset.name}")  # as the primary key does
        self.d.datasets[(dataset.account, dataset.name)] = (dataset, 1)

    def list_datasets(self, account: str, after: str | None, limit: int) -> list[Dataset]:
        return [ds for (a, n), (ds, _) in sorted(self.d.datasets.items())
                if a == account and (after is None or n > after)][:limit]

    def allocate_version(self, account: str, name: str) -> int:
        ds, version = self.d.datasets[(account, name)]
        self.d.datasets[(account, name)] = (ds, version + 1)
        return version

    def add_version(self, version: DatasetVersion) -> None:
        self.d.dataset_versions[(version.account, version.dataset, version.version)] = version

    def get_version(self, account: str, name: str, version: int) -> DatasetVersion | None:
        return self.d.dataset_versions.get((account, name, version))

    def latest_version(self, account: str, name: str) -> DatasetVersion | None:
        found = self.list_versions(account, name, None, 10**9)
        return found[-1] if found else None

    def list_versions(self, account: str, name: str, after: int | None, limit: int) -> list[DatasetVersion]:
        return [v for (a, n, number), v in sorted(self.d.dataset_versions.items())
                if a == account and n == name and (after is None or number > after)][:limit]

    def add_subscription(self, subscription: Subscription) -> None:
        self.d.subscriptions[subscription.id] = subscription

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        return self.d.subscriptions.get(subscription_id)

    def save_subscription(self, subscription: Subscription) -> None:
        self.d.subscriptions[subscription.id] = subscription

    def list_subscriptions(self, *, account: str | None = None, subscriber: str | None = None,
                           dataset: str | None = None, status: SubscriptionStatus | None = None,
                           after: str | None = None, limit: int = 50) -> list[Subscription]:
        return [s for i, s in sorted(self.d.subscriptions.items())
                if (account is None or s.account == account) and (subscriber is None or s.subscriber == subscriber)
                and (dataset is None or s.dataset == dataset) and (status is None or s.status is status)
                and (after is None or i > after)][:limit]

    def subscriptions_to(self, account: str, dataset: str, subscriber: str) -> list[Subscription]:
        return self.list_subscriptions(account=account, subscriber=subscriber, dataset=dataset, limit=10**9)

    def add_read(self, read: DatasetRead) -> None:
        self.d.dataset_reads.append(read)

    def list_reads(self, account: str, dataset: str, after: str | None, limit: int) -> list[DatasetRead]:
        return [r for r in sorted(self.d.dataset_reads, key=lambda r: r.id)
                if r.account == account and r.dataset == dataset and (after is None or r.id > after)][:limit]

    def reads_for_run(self, for_account: str, run: str) -> list[DatasetRead]:
        return [r for r in sorted(self.d.dataset_reads, key=lambda r: r.id)
                if r.for_account == for_account and r.run == run]

class FakeCatalogRepository:
    def __init__(self, data: Data) -> None:
        self.d = data

    def get_portfolio(self, account: str, name: str) -> Portfolio | None:
        return self.d.portfolios.get((account, name))

    def add_portfolio(self, portfolio: Portfolio, created_at: datetime, created_by: str) -> None:
        self.d.portfolios[(portfolio.account, portfolio.name)] = portfolio

    def update_portfolio(self, portfolio: Portfolio) -> None:
        self.d.portfolios[(portfolio.account, portfolio.name)] = portfolio

    def list_portfolios(self, account: str, after: str | None, limit: int) -> list[Portfolio]:
        return [p for (a, n), p in sorted(self.d.portfolios.items())
                if a == account and (after is None or n > after)][:limit]

    def get_product(self, account: str, name: str) -> Product | None:
        return self.d.products.get((account, name))

    def add_product(self, product: Product, created_at: datetime, created_by: str) -> None:
        self.d.products[(product.account, product.name)] = product

    def list_products(self, account: str, portfolio: str | None, after: str | None,
                      limit: int) -> list[Product]:
        return [p for (a, n), p in sorted(self.d.products.items())
                if a == account and (portfolio is None or p.portfolio == portfolio)
                and (after is None or n > after)][:limit]

    def allocate_version(self, account: str, product: str, description: str) -> int:
        current = self.d.products[(account, product)]
        self.d.products[(account, product)] = replace(current, description=description,
                                                      latest_version=current.latest_version + 1)
        return current.latest_version + 1

    def add_version(self, version: ProductVersion) -> None:
        if self.find_version_by_content(version.account, version.product, version.content_digest):
            raise RuntimeError("unique content violated")  # as the DB's index does
        self.d.product_versions[(version.account, version.product, version.version)] = version

    def get_version(self, account: str, product: str, version: int) -> ProductVersion | None:
        return self.d.product_versions.get((account, product, version))

    def list_versions(self, account: str, product: str, after: int | None, limit: int) -> list[ProductVersion]:
        return [v for (a, p, n), v in sorted(self.d.product_versions.items())
                if a == account and p == product and (after is None or n > after)][:limit]

    def find_version_by_content(self, account: str, product: str, digest: str) -> ProductVersion | None:
        return next((v for (a, p, _), v in self.d.product_versions.items()
                     if a == account and p == product and v.content_digest == digest), None)

    def list_shares(self, account: str, portfolio: str) -> list[Share]:
        return sorted((s for s in self.d.shares if (s.account, s.portfolio) == (account, portfolio)),
                      key=lambda s: s.target)

    def add_share(self, share: Share) -> None:
        self.d.shares.add(share)

    def delete_share(self, share: Share) -> None:
        self.d.shares.discard(share)

    def list_grants(self, account: str, portfolio: str) -> list[Grant]:
        return sorted((g for g in self.d.grants if (g.account, g.portfolio) == (account, portfolio)),
                      key=lambda g: g.pattern)

    def add_grant(self, grant: Grant) -> None:
        self.d.grants.add(grant)

    def delete_grant(self, grant: Grant) -> None:
        self.d.grants.discard(grant)

    def imported(self, targets: Sequence[str], product: str | None = None) -> list[ImportedPortfolio]:
        keys = sorted({(s.account, s.portfolio) for s in self.d.shares if s.target in set(targets)})
        return [ImportedPortfolio(self.d.portfolios[k], tuple(self.list_grants(*k)),
                                  tuple(p for p in self.list_products(k[0], k[1], None, 10**9)
                                        if product is None or p.name == product)) for k in keys]


class FakeProjectRepository:
    def __init__(self, data: Data) -> None:
        self.d = data

    def get_project(self, account: str, name: str) -> Project | None:
        return self.d.projects.get((account, name))

    def add_project(self, project: Project) -> None:
        if (project.account, project.name) in self.d.projects:
            raise IntegrityError("duplicate project")
        self.d.projects[(project.account, project.name)] = project

    def save_project(self, project: Project) -> None:
        self.d.projects[(project.account, project.name)] = project

    def list_projects(self, account: str, after: str | None, limit: int) -> list[Project]:
        return [p for (a, n), p in sorted(self.d.projects.items())
                if a == account and (after is None or n > after)][:limit]

    def get_workspace(self, account: str, name: str) -> Workspace | None:
        return self.d.workspaces.get((account, name))

    def add_workspace(self, workspace: Workspace) -> None:
        if (workspace.account, workspace.name) in self.d.workspaces:
            raise IntegrityError("duplicate workspace")
        self.d.workspaces[(workspace.account, workspace.name)] = workspace

    def save_workspace(self, workspace: Workspace) -> None:
        self.d.workspaces[(workspace.account, workspace.name)] = workspace

    def list_workspaces(self, account: str, after: str | None, limit: int) -> list[Workspace]:
        return [w for (a, n), w in sorted(self.d.workspaces.items())
                if a == account and (after is None or n > after)][:limit]


class FakeOutbox:
    def __init__(self, data: Data) -> None:
        self.d = data

    def add(self, event: Event) -> None:
        self.d.outbox.append(event)

    def claim_pending(self, limit: int) -> list[Event]:
        pending = [e for e in self.d.outbox if e.id not in self.d.dispatched]
        return sorted(pending, key=lambda e: (e.time, e.id))[:limit]

    def mark_dispatched(self, event_ids: Sequence[str]) -> None:
        self.d.dispatched.update(event_ids)


class FakeDeliveryRepository:
    def __init__(self, data: Data) -> None:
        self.d = data

    def add(self, delivery: Delivery) -> bool:
        if delivery.id in self.d.deliveries:
            return False
        self.d.deliveries[delivery.id] = delivery
        return True

    def get(self, delivery_id: str) -> Delivery | None:
        return self.d.deliveries.get(delivery_id)

    def claim_due(self, now: datetime, lease_until: datetime, claim: str, limit: int) -> list[Delivery]:
        def due(x: Delivery) -> bool:
            if x.status is DeliveryStatus.PENDING:
                return x.next_attempt_at <= now
            return x.status is DeliveryStatus.DELIVERING and x.claimed_until is not None and x.claimed_until <= now

        batch = sorted((x for x in self.d.deliveries.values() if due(x)), key=lambda x: x.next_attempt_at)[:limit]
        claimed = [replace(x, status=DeliveryStatus.DELIVERING, claim=claim, claimed_until=lease_until,
                           attempts=x.attempts + 1, updated_at=now) for x in batch]
        self.d.deliveries.update({x.id: x for x in claimed})
        return claimed

    def finish(self, delivery: Delivery, claim: str) -> bool:
        held = self.d.deliveries.get(delivery.id)
        if held is None or held.claim != claim or held.status is not DeliveryStatus.DELIVERING:
            return False
        self.d.deliveries[delivery.id] = delivery
        return True

    def save(self, delivery: Delivery) -> None:
        self.d.deliveries[delivery.id] = delivery

    def list(self, bus: str, status: DeliveryStatus | None, after: str | None, limit: int) -> list[Delivery]:
        def key(x: Delivery) -> str:
            return f"{x.created_at.isoformat()}|{x.id}"

        items = sorted((x for x in self.d.deliveries.values()
                        if x.bus == bus and (status is None or x.status is status)), key=key)
        return [x for x in items if after is None or key(x) > after][:limit]


class FakePipelineRepository:
    def __init__(self, data: Data) -> None:
        self.d = data

    def get_pipeline(self, account: str, name: str) -> Pipeline | None:
        return self.d.pipelines.get((account, name))

    def put_pipeline(self, pipeline: Pipeline, code: dict[str, str]) -> None:
        self.d.pipeline_code.setdefault((pipeline.account, pipeline.code_sha256), dict(code))
        self.d.pipelines[(pipeline.account, pipeline.name)] = pipeline

    def code_of(self, account: str, code_sha256: str) -> dict[str, str] | None:
        return self.d.pipeline_code.get((account, code_sha256))

    def list_pipelines(self, account: str, after: str | None, limit: int) -> list[Pipeline]:
        return [p for (a, n), p in sorted(self.d.pipelines.items())
                if a == account and (after is None or n > after)][:limit]

    def add_run(self, run: PipelineRun) -> None:
        self.d.pipeline_runs[run.id] = run

    def get_run(self, run_id: str) -> PipelineRun | None:
        return self.d.pipeline_runs.get(run_id)

    def save_run(self, run: PipelineRun) -> None:
        stored = self.d.pipeline_runs[run.id]
        self.d.pipeline_runs[run.id] = replace(run, cancel_requested=stored.cancel_requested or run.cancel_requested)

    def request_cancel(self, run_id: str) -> None:
        self.d.pipeline_runs[run_id] = replace(self.d.pipeline_runs[run_id], cancel_requested=True)

    def list_runs(self, account: str, pipeline: str, after: str | None, limit: int) -> list[PipelineRun]:
        runs = sorted((r for r in self.d.pipeline_runs.values() if r.account == account and r.pipeline == pipeline),
                      key=lambda r: r.id, reverse=True)
        return [r for r in runs if after is None or r.id < after][:limit]

    def claim_pending_run(self) -> PipelineRun | None:
        return next(iter(self.runs_with_status("Pending", 1)), None)

    def runs_with_status(self, status: str, limit: int) -> list[PipelineRun]:
        return sorted((r for r in self.d.pipeline_runs.values() if str(r.status) == status),
                      key=lambda r: (r.created_at, r.id))[:limit]

    def get_cached(self, account: str, key: str) -> tuple[dict[str, str], dict[str, Any]] | None:
        return self.d.step_cache.get((account, key))

    def put_cached(self, account: str, key: str, outputs: dict[str, str], metrics: dict[str, Any],
                   run_id: str, at: datetime) -> None:
        self.d.step_cache.setdefault((account, key), (dict(outputs), dict(metrics)))


class FakeDeploymentRepository:
    def __init__(self, data: Data) -> None:
        self.d = data

    def get_pipeline(self, account: str, name: str) -> DeploymentPipeline | None:
        return self.d.deployment_pipelines.get((account, name))

    def put_pipeline(self, pipeline: DeploymentPipeline) -> None:
        self.d.deployment_pipelines[(pipeline.account, pipeline.name)] = pipeline

    def list_pipelines(self, account: str, after: str | None, limit: int) -> list[DeploymentPipeline]:
        return [p for (a, n), p in sorted(self.d.deployment_pipelines.items())
                if a == account and (after is None or n > after)][:limit]

    def add_execution(self, execution: Execution) -> None:
        if self.find_by_event(execution.account, execution.pipeline, execution.event_id) is not None:
            raise Conflict("an execution of this event exists")
        self.d.executions[execution.id] = execution

    def get_execution(self, execution_id: str) -> Execution | None:
        return self.d.executions.get(execution_id)

    def find_by_event(self, account: str, pipeline: str, event_id: str) -> Execution | None:
        return next((e for e in self.d.executions.values()
                     if (e.account, e.pipeline, e.event_id) == (account, pipeline, event_id)), None)

    def save_execution(self, execution: Execution) -> bool:
        stored = self.d.executions.get(execution.id)
        if stored is None or stored.revision != execution.revision:
            return False
        self.d.executions[execution.id] = replace(execution, revision=execution.revision + 1)
        return True

    def list_executions(self, account: str, pipeline: str, after: str | None, limit: int) -> list[Execution]:
        found = sorted((e for e in self.d.executions.values() if (e.account, e.pipeline) == (account, pipeline)),
                       key=lambda e: e.id, reverse=True)
        return [e for e in found if after is None or e.id < after][:limit]

    def unfinished(self, account: str, pipeline: str) -> list[Execution]:
        return sorted((e for e in self.d.executions.values()
                       if (e.account, e.pipeline) == (account, pipeline) and not e.status.finished), key=lambda e: e.id)

    def claim_runnable(self, now: datetime, limit: int) -> list[Execution]:
        return sorted((e for e in self.d.executions.values() if e.status in RUNNABLE
                       and (e.claimed_until is None or e.claimed_until < now)),
                      key=lambda e: (e.updated_at, e.id))[:limit]

    def has_runnable(self, now: datetime) -> bool:
        return bool(self.claim_runnable(now, 1))

    def any_enabled(self) -> bool:
        return any(p.enabled for p in self.d.deployment_pipelines.values())

    def claim_expired(self, now: datetime, limit: int) -> list[Execution]:
        return sorted((e for e in self.d.executions.values() if e.status is ExecutionStatus.AWAITING_APPROVAL
                       and e.approval_expires_at is not None and e.approval_expires_at <= now),
                      key=lambda e: e.id)[:limit]


class FakeUnitOfWork:
    """Works on a copy of the data; commit swaps it in, so an abandoned unit leaves nothing behind."""

    def __init__(self, store: FakeStore, *, readonly: bool = False) -> None:
        self.store = store
        self.readonly = readonly
        self._callbacks: list[Callable[[], None]] = []
        self.committed = False

    def __enter__(self) -> Self:
        self.data = copy.deepcopy(self.store.data)
        self.org = FakeOrgRepository(self.data)
        self.tokens = FakeTokenRepository(self.data)
        self.sessions = FakeSessionRepository(self.data)
        self.audit = FakeAuditRepository(self.data)
        self.outbox = FakeOutbox(self.data)
        self.registry = FakeRegistryRepository(self.data)
        self.cards = FakeCardRepository(self.data)
        self.deliveries = FakeDeliveryRepository(self.data)
        self.datasets = FakeDatasetRepository(self.data)
        self.catalog = FakeCatalogRepository(self.data)
        self.account_requests = FakeAccountRequestRepository(self.data)
        self.projects = FakeProjectRepository(self.data)
        self.pipelines = FakePipelineRepository(self.data)
        self.deployments = FakeDeploymentRepository(self.data)
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def commit(self) -> None:
        if self.readonly:
            raise RuntimeError("a read-only unit of work cannot commit")
        self.store.data = self.data
        self.data = copy.deepcopy(self.data)
        for repo in (self.org, self.tokens, self.sessions, self.audit, self.outbox, self.registry,
                     self.cards, self.deliveries, self.datasets, self.catalog, self.account_requests,
                     self.projects, self.pipelines, self.deployments):
            repo.d = self.data
        self.committed = True
        for cb in self._callbacks:
            cb()
        self._callbacks.clear()

    def rollback(self) -> None:
        self._callbacks.clear()

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)


@dataclass
class FakeStore:
    data: Data = field(default_factory=Data)

    def uow(self, *, readonly: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, readonly=readonly)


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        self.current += timedelta(microseconds=1)
        return self.current

    def advance(self, **delta: Any) -> None:
        self.current += timedelta(**delta)


class FakeSigner:
    key_id = "fake-key"

    def sign(self, message: bytes) -> str:
        return "sig:" + str(hash(message))

    def verify(self, message: bytes, signature: str, key_id: str) -> bool:
        return key_id == self.key_id and signature == "sig:" + str(hash(message))


class MemoryWitness:
    def __init__(self) -> None:
        self.checkpoint: Checkpoint | None = None

    def read(self) -> Checkpoint | None:
        return self.checkpoint

    def write(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint


class MemoryArtifactStore:
    """The artifact-store port in memory: same digests, limits and errors as the real backends."""

    local = True

    def __init__(self) -> None:
        self.blobs: dict[tuple[str, str], bytes] = {}

    def put(self, account: str, chunks: Iterable[bytes], *, expected_sha256: str | None = None,
            max_bytes: int | None = None) -> BlobInfo:
        check_name(account, "account")
        if expected_sha256 is not None:
            check_digest(expected_sha256, "expected_sha256")
        digester = Digester(max_bytes)
        data = bytearray()
        for chunk in chunks:
            digester.update(chunk)
            data += chunk
        info = digester.result(account, expected_sha256)
        self.blobs[(account, info.sha256)] = bytes(data)
        return info

    def open(self, account: str, sha256: str) -> Iterator[bytes]:
        info = self.stat(account, sha256)
        if info is None:
            raise NotFound(f"no blob {sha256} in {account}")
        return verified(iter([self.blobs[(account, sha256)]]), info)

    def stat(self, account: str, sha256: str) -> BlobInfo | None:
        check_name(account, "account")
        check_digest(sha256)
        data = self.blobs.get((account, sha256))
        return None if data is None else BlobInfo(account, sha256, len(data))

    def digests(self, account: str) -> Iterator[str]:
        check_name(account, "account")
        return iter([sha for (owner, sha) in list(self.blobs) if owner == account])

    def copy(self, src_account: str, dst_account: str, sha256: str) -> BlobInfo:
        check_name(dst_account, "account")
        source = self.open(src_account, sha256)
        try:
            return self.put(dst_account, source, expected_sha256=sha256)
        except ValidationError as mismatch:  # the source no longer hashes to its name
            raise IntegrityError(f"blob {sha256} of {src_account} is corrupt", **mismatch.details) from None


# --- endpoints ------------------------------------------------------------------------------------

Predict = Callable[[str, list[list[Any]]], list[Any]]


def _first_feature_positive(package: str, rows: list[list[Any]]) -> list[Any]:
    return [int(float(row[0]) > 0) for row in rows]


@dataclass
class _Revision:
    revision: int
    package: str
    status: RolloutStatus
    reason: str | None = None
    polls: int = 0
    asked_for: str = ""
    """The reason given to deploy or rollback."""


@dataclass
class FakeEndpoints:
    """EndpointOperations in memory: blue/green revisions that get healthy after ``polls_to_healthy``
    rollout reads (or never, for the accounts in ``never_healthy``), and a model ``predict``
    (package, rows) -> predictions. Every call is kept in ``calls`` with who made it."""

    predict: Predict = _first_feature_positive
    polls_to_healthy: int = 1
    never_healthy: set[str] = field(default_factory=set)
    failing_invocations: set[str] = field(default_factory=set)
    """Accounts whose invocations raise (a broken model)."""
    delay_seconds: dict[str, float] = field(default_factory=dict)
    allowed: set[str] | None = None
    """Principals the fake lets act (None: anyone); the others are refused as policy would."""
    revisions: dict[tuple[str, str], list[_Revision]] = field(default_factory=dict)
    serving: dict[tuple[str, str], int] = field(default_factory=dict)
    calls: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(operation, principal, account, endpoint)."""

    def _check(self, operation: str, identity: Identity, account: str, endpoint: str) -> None:
        self.calls.append((operation, identity.principal, account, endpoint))
        if self.allowed is not None and identity.principal not in self.allowed:
            raise PermissionDenied(f"{identity.principal} may not {operation} {endpoint} in {account}",
                                   policy="default-deny")

    def _new(self, account: str, endpoint: str, package: str, status: RolloutStatus, reason: str) -> int:
        revisions = self.revisions.setdefault((account, endpoint), [])
        for earlier in revisions:
            if earlier.status is RolloutStatus.UPDATING:
                earlier.status = RolloutStatus.SUPERSEDED
        revision = _Revision(len(revisions) + 1, package, status, asked_for=reason)
        revisions.append(revision)
        if status is RolloutStatus.IN_SERVICE:
            self.serving[(account, endpoint)] = revision.revision
        return revision.revision

    def deploy(self, identity: Identity, account: str, endpoint: str, package: str, *, reason: str) -> int:
        self._check("deploy", identity, account, endpoint)
        return self._new(account, endpoint, package, RolloutStatus.UPDATING, reason)

    def revision_for(self, identity: Identity, account: str, endpoint: str, reason: str) -> int | None:
        self._check("revision_for", identity, account, endpoint)
        return next((r.revision for r in reversed(self.revisions.get((account, endpoint), []))
                     if r.asked_for == reason), None)

    def serving_package(self, account: str, endpoint: str) -> str | None:
        number = self.serving.get((account, endpoint))
        return self.revisions[(account, endpoint)][number - 1].package if number else None

    def rollout(self, identity: Identity, account: str, endpoint: str, revision: int) -> Rollout:
        self._check("rollout", identity, account, endpoint)
        revisions = self.revisions.get((account, endpoint), [])
        if not 1 <= revision <= len(revisions):
            raise NotFound(f"endpoint {endpoint} in {account} has no revision {revision}")
        found = revisions[revision - 1]
        if found.status is RolloutStatus.UPDATING:
            found.polls += 1
            if found.polls >= self.polls_to_healthy:
                if account in self.never_healthy:
                    found.status, found.reason = RolloutStatus.FAILED, "the workers never passed their health check"
                else:
                    found.status = RolloutStatus.IN_SERVICE
                    self.serving[(account, endpoint)] = revision
        number = self.serving.get((account, endpoint))
        return Rollout(revision, found.status, found.reason, number, self.serving_package(account, endpoint))

    def invoke(self, identity: Identity, account: str, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._check("invoke", identity, account, endpoint)
        package = self.serving_package(account, endpoint)
        if package is None:
            raise NotFound(f"endpoint {endpoint} in {account} serves nothing")
        if account in self.failing_invocations:
            raise ValidationError("the model failed to predict")
        if account in self.delay_seconds:
            import time
            time.sleep(self.delay_seconds[account])
        if "instances" in payload:
            rows = [list(r) for r in payload["instances"]]
        else:
            columns = list(payload["inputs"].values())
            rows = [list(r) for r in zip(*columns, strict=True)]
        return {"predictions": self.predict(package, rows)}

    def rollback(self, identity: Identity, account: str, endpoint: str, *, reason: str) -> int:
        self._check("rollback", identity, account, endpoint)
        number = self.serving.get((account, endpoint))
        revisions = self.revisions.get((account, endpoint), [])
        earlier = [r for r in revisions if r.status is RolloutStatus.IN_SERVICE or r.revision == number]
        previous = [r for r in revisions[: (number or 1) - 1] if r.status in (RolloutStatus.IN_SERVICE,)]
        if number is None or not previous:
            raise Conflict(f"endpoint {endpoint} in {account} has no previous configuration", earlier=len(earlier))
        return self._new(account, endpoint, previous[-1].package, RolloutStatus.IN_SERVICE, reason)
