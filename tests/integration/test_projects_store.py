"""Projects and workspaces on each backend: what a launch recorded comes back whole."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from charter.bootstrap import Platform
from charter.domain.catalog import ImportedPortfolio, Portfolio, Product, ProductKind, Share
from charter.domain.projects import (
    LaunchStatus,
    Project,
    ProjectUpdate,
    ProvisionedResource,
    ResourceKind,
    Workspace,
    WorkspaceMember,
)
from tests.integration.conftest import Org

T = datetime(2026, 1, 1, tzinfo=UTC)
SHARED = "ml-shared-services"


def _products(platform: Platform) -> None:
    with platform.bus.uow_factory() as uow:
        uow.catalog.add_portfolio(Portfolio(SHARED, "ml-templates", "Projects"), T, "priya")
        uow.catalog.add_product(Product(SHARED, "ml-templates", "train", ProductKind.PROJECT), T, "priya")
        uow.catalog.add_product(Product(SHARED, "ml-templates", "team", ProductKind.WORKSPACE), T, "priya")
        uow.commit()


PROJECT = Project(
    "ml-dev", "churn", SHARED, "train", 1, {"dataset": "bank-marketing", "threshold": 0.7}, "lena", T, T,
    resources=(ProvisionedResource(ResourceKind.MODEL_PACKAGE_GROUP, "crn:charter:ml-dev:registry:model-package-group/churn",
                                   "churn", {"readers": ["ml-shared-services"]}),
               ProvisionedResource(ResourceKind.PIPELINE, "crn:charter:ml-dev:pipelines:pipeline/churn-train",
                                   "churn-train", {"definition": "pipelines/train.yaml", "sha256": "a" * 64,
                                                   "start_on_launch": True, "parameters": {"dataset": "x"}})))


def test_a_project_round_trips_with_its_resources_and_history(org: Org, platform: Platform) -> None:
    _products(platform)
    with platform.bus.uow_factory() as uow:
        uow.projects.add_project(PROJECT)
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert uow.projects.get_project("ml-dev", "churn") == PROJECT
    later = datetime(2026, 2, 1, tzinfo=UTC)
    update = ProjectUpdate(later, "lena", 1, 2, {"threshold": 0.9}, ("a",), ("b",), ("c",), ("d",), ("kept d",))
    moved = replace(PROJECT, version=2, status=LaunchStatus.TERMINATED, updated_at=later, history=(update,))
    with platform.bus.uow_factory() as uow:
        uow.projects.save_project(moved)
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert uow.projects.get_project("ml-dev", "churn") == moved
        assert uow.projects.list_projects("ml-dev", None, 10) == [moved]
        assert uow.projects.list_projects("ml-dev", "churn", 10) == []
        assert uow.projects.get_project("ml-test", "churn") is None


def test_a_workspace_round_trips_with_members_tags_and_data_access(org: Org, platform: Platform) -> None:
    _products(platform)
    workspace = Workspace("ml-dev", "fraud", "fraud", SHARED, "team", 1, {"team": "fraud"}, "lena", T, T,
                          (WorkspaceMember("arthur"), WorkspaceMember("nobody", bound=False)), "CC-42", "retail",
                          "dev", (("cost-centre", "CC-42"), ("team", "fraud")), ("bank-marketing",))
    with platform.bus.uow_factory() as uow:
        uow.projects.add_workspace(workspace)
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        found = uow.projects.get_workspace("ml-dev", "fraud")
        assert found == workspace and found is not None and [m.bound for m in found.members] == [True, False]
    done = replace(workspace, status=LaunchStatus.TERMINATED)
    with platform.bus.uow_factory() as uow:
        uow.projects.save_workspace(done)
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert uow.projects.list_workspaces("ml-dev", None, 10) == [done]


def test_the_launch_lookup_reads_only_the_named_product_of_each_shared_portfolio(
        org: Org, platform: Platform) -> None:
    _products(platform)
    with platform.bus.uow_factory() as uow:
        uow.catalog.add_share(Share(SHARED, "ml-templates", "ou:workloads"))
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        def ours(product: str | None = None) -> list[ImportedPortfolio]:  # the example shares its own too
            return [i for i in uow.catalog.imported(["ml-dev", "ou:workloads"], product)
                    if i.portfolio.name == "ml-templates"]

        [everything], [only], [absent] = ours(), ours("train"), ours("absent")
        assert [p.name for p in everything.products] == ["team", "train"]
        assert [p.name for p in only.products] == ["train"]
        assert absent.products == ()
