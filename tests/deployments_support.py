"""The road to a deployment, for the unit tier (fakes) and the integration tier (real stores) alike:
a trained package promoted to the central registry and approved there, the deploy project
launched, and the execution its rule starts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from charter.domain import commands as c
from charter.domain.deployments import Execution
from charter.domain.identity import Identity
from charter.domain.registry import ModelPackage
from charter.services.handlers.projects import ProjectResult
from charter.services.messagebus import MessageBus
from tests.models import skops_model
from tests.unit.catalog_support import pack, template_files

CENTRAL = "ml-shared-services"
GROUP = "churn-ml-dev"
PIPELINE = "churn-deploy"
# The fake endpoints predict 1 when the first feature is positive: this sample scores 0.75.
HOLDOUT = {"instances": [[1.0, 0.0], [2.0, 1.0], [-1.0, 0.5], [-3.0, 2.0]], "labels": [1, 1, 0, 1]}
SAMPLE = {"instances": [[0.5, 1.0], [-0.5, 1.0]]}


class Road:
    def __init__(self, bus: MessageBus, identity: Callable[[str], Identity]) -> None:
        self.bus = bus
        self._identity = identity
        self._identities: dict[str, Identity] = {}
        self._event = 0

    def identity(self, who: str) -> Identity:
        if who not in self._identities:
            self._identities[who] = self._identity(who)
        return self._identities[who]

    def as_(self, who: str, message: c.Message) -> Any:
        return self.bus.handle(message, self.identity(who))

    def central_package(self, *, holdout: dict[str, Any] | None = None, version: int = 1,
                        approve_as: str = "mei") -> ModelPackage:
        """A dev package (with a held-out sample) approved by lena, promoted, approved centrally."""
        if version == 1:
            self.as_("lena", c.CreateModelPackageGroup("ml-dev", "churn", "churn", (),
                                                       (CENTRAL, "ou:deployments")))
        model = self.as_("sam", c.UploadArtifact("ml-dev", [skops_model()], 1 << 20))
        artifacts = [c.ArtifactRef("model.skops", model.sha256)]
        if holdout is not False:
            blob = self.as_("sam", c.UploadArtifact("ml-dev", [json.dumps(holdout or HOLDOUT).encode()], 1 << 20))
            artifacts.append(c.ArtifactRef("holdout.json", blob.sha256))
        source = self.as_("sam", c.RegisterModelPackage(
            "ml-dev", "churn", "skops", tuple(artifacts), sample_payload=SAMPLE, description=f"v{version}",
            run=f"run-{version}", run_started_by="sam"))
        source = self.as_("lena", c.DecideModelPackage("ml-dev", "churn", source.version, "Approved", "good"))
        self.as_("promotion-bot", c.CopyPackageArtifacts(str(source.crn), CENTRAL))
        promoted = self.as_("promotion-bot", c.PromoteModelPackage(str(source.crn), CENTRAL, source.digests,
                                                                  f"promote-{version}")).package
        approved: ModelPackage = self.as_(approve_as, c.DecideModelPackage(
            CENTRAL, GROUP, promoted.version, "Approved", "ok for test"))
        return approved

    def launch(self, **params: Any) -> ProjectResult:
        """The deploy template published by priya and launched by mei in the shared-services account."""
        portfolio = "deploy-templates"
        self.as_("priya", c.CreatePortfolio(CENTRAL, portfolio, "Deployment projects"))
        unpacked = self.as_("priya", c.UnpackProductArchive(
            CENTRAL, portfolio, [pack(template_files("deploy-realtime-cross-account"))], 1 << 24, None))
        refs = tuple(c.ProductFileRef(f.path, f.sha256) for f in unpacked.files)
        self.as_("priya", c.PublishProductVersion(CENTRAL, portfolio, refs))
        self.as_("priya", c.SharePortfolio(CENTRAL, portfolio, CENTRAL))
        self.as_("priya", c.GrantPortfolio(CENTRAL, portfolio, "ml-engineer"))
        result: ProjectResult = self.as_("mei", c.CreateProject(
            CENTRAL, PIPELINE, "deploy-realtime-cross-account",
            {"model_group": GROUP, "test_account": "ml-test", "prod_account": "ml-prod", **params}))
        return result

    def start(self, package: ModelPackage, status: str = "Approved", event_id: str | None = None) -> Execution:
        """What the rule's delivery does: start an execution as the pipeline's runAs principal."""
        self._event += 1
        execution: Execution = self.as_("deployment-bot", c.StartDeploymentExecution(
            CENTRAL, PIPELINE, event_id or f"event-{self._event}", str(package.crn), status))
        return execution

    def execution(self, execution_id: str | None = None) -> Execution:
        found: Execution = self.as_("mei", c.GetDeploymentExecution(CENTRAL, PIPELINE, execution_id))
        return found

    def approve_card(self) -> None:
        self.as_("mei", c.SubmitModelCard(CENTRAL, GROUP, "ready"))
        self.as_("grace", c.ApproveModelCard(CENTRAL, GROUP, "reviewed"))
