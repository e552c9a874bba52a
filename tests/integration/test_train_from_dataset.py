"""The train-from-dataset template's pipeline doing real work on the example data: scikit-learn's
breast-cancer set, governed in data-governance, subscribed by ml-dev."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from charter.domain import commands as c
from charter.domain.pipelines import PipelineRun, RunStatus, StepStatus
from charter.examples.datasets import write_example_csv
from tests.integration.conftest import Org

TEMPLATE = Path(__file__).resolve().parents[2] / "examples" / "acme" / "templates" / "train-from-dataset"


def _code() -> dict[str, bytes]:
    return {p.relative_to(TEMPLATE).as_posix(): p.read_bytes() for p in TEMPLATE.rglob("*.py")
            if "__pycache__" not in p.parts}


@pytest.fixture
def governed(org: Org, tmp_path: Path) -> Org:
    csv = write_example_csv(tmp_path / "breast-cancer.csv").read_bytes()
    diego, lena = org.identity("diego"), org.identity("lena")
    uploaded = org.bus.handle(c.UploadDataset("data-governance", "breast-cancer", "csv", iter([csv]), 10**8), diego)
    org.bus.handle(c.RegisterDatasetVersion("data-governance", "breast-cancer", "csv", uploaded.blob.sha256), diego)
    sub = org.bus.handle(c.Subscribe("data-governance", "breast-cancer", "ml-dev", "churn"), lena)
    org.bus.handle(c.DecideSubscription("data-governance", sub.id, "Approved", "ok", 86400), diego)
    org.bus.handle(c.CreateModelPackageGroup("ml-dev", "churn"), lena)
    definition = (TEMPLATE / "pipelines" / "train.yaml").read_text()
    org.bus.handle(c.CreatePipeline("ml-dev", "churn-train", definition, _code()), lena)
    return org


def _run(org: Org, **params: str) -> PipelineRun:
    base = {"dataset": "breast-cancer", "target": "y", "group": "churn"}
    run = org.bus.handle(c.StartPipelineRun("ml-dev", "churn-train", {**base, **params}), org.identity("sam"))
    assert org.platform.pipelines.run_once()
    done: PipelineRun = org.bus.handle(c.GetPipelineRun("ml-dev", run.id), org.identity("sam"))
    return done


def test_the_pipeline_trains_evaluates_and_registers_a_pending_skops_model_with_lineage(governed: Org) -> None:
    started = time.monotonic()
    run = _run(governed, algorithm="LogisticRegression")
    assert time.monotonic() - started < 60
    assert run.status is RunStatus.SUCCEEDED, (run.reason, [(s.name, s.error) for s in run.steps])
    evaluation = run.step("evaluate").metrics["evaluation"]
    assert evaluation["roc_auc"] > 0.95 and evaluation["accuracy"] > 0.9 and evaluation["f1"] > 0.9
    registered = run.step("register").metrics["_registered"]
    package = governed.bus.handle(c.GetModelPackage("ml-dev", "churn", registered["version"]),
                                  governed.identity("lena"))
    assert str(package.status) == "PendingManualApproval"
    assert str(package.format) == "skops"
    assert package.lineage.run == run.id and package.lineage.run_started_by == "sam"
    assert package.lineage.datasets == ("crn:charter:data-governance:data:dataset/breast-cancer/1",)
    assert dict(package.metrics)["roc_auc"] == pytest.approx(evaluation["roc_auc"])
    assert package.signature is not None and package.sample_payload is not None


def test_a_model_below_the_threshold_is_not_registered_and_the_run_says_why(governed: Org) -> None:
    run = _run(governed, algorithm="DecisionTreeClassifier", metric="accuracy", threshold="0.999")
    assert run.status is RunStatus.SUCCEEDED_NOT_REGISTERED
    assert "is below the threshold 0.999" in run.reason
    assert run.step("register").status is StepStatus.SKIPPED


def test_a_dataset_parameter_that_names_no_dataset_is_refused_before_anything_runs(governed: Org) -> None:
    from charter.errors import ValidationError

    with pytest.raises(ValidationError, match="parameter 'dataset'"):
        governed.bus.handle(c.StartPipelineRun("ml-dev", "churn-train", {
            "dataset": "Not A Name", "target": "y", "group": "churn"}), governed.identity("sam"))
