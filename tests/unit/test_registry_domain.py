from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from charter.domain.registry import (
    ApprovalStatus,
    Artifact,
    Lineage,
    ModelFormat,
    ModelPackage,
    ModelPackageGroup,
    check_artifact_path,
)
from charter.errors import InvalidTransition, ValidationError

T = datetime(2026, 1, 1, tzinfo=UTC)
DIGEST = "a" * 64


def _package(**kw: object) -> ModelPackage:
    base = ModelPackage("ml-dev", "churn", 1, ModelFormat.SKOPS, (Artifact("model.skops", 10, DIGEST),),
                        Lineage("sam", run="run-1", run_started_by="lena"), T)
    return replace(base, **kw)  # type: ignore[arg-type]


def test_a_package_is_pending_until_someone_decides() -> None:
    assert _package().status is ApprovalStatus.PENDING and _package().approval is None


def test_an_approval_is_recorded_with_actor_comment_and_digests() -> None:
    approved = _package().decide(ApprovalStatus.APPROVED, "lena", "beats v1", T)
    change = approved.history[-1]
    assert (change.status, change.previous, change.actor, change.comment, change.digests) == (
        ApprovalStatus.APPROVED, ApprovalStatus.PENDING, "lena", "beats v1", (DIGEST,))
    assert approved.approval == change


def test_a_decision_can_change_later_but_not_to_itself() -> None:
    approved = _package().decide(ApprovalStatus.APPROVED, "lena", "", T)
    rejected = approved.decide(ApprovalStatus.REJECTED, "lena", "drift", T)
    assert rejected.status is ApprovalStatus.REJECTED and len(rejected.history) == 2
    with pytest.raises(InvalidTransition):
        rejected.decide(ApprovalStatus.REJECTED, "lena", "", T)
    with pytest.raises(InvalidTransition):
        rejected.decide(ApprovalStatus.PENDING, "lena", "", T)


def test_an_approval_does_not_carry_over_to_changed_artifacts() -> None:
    approved = _package().decide(ApprovalStatus.APPROVED, "lena", "", T)
    swapped = replace(approved, artifacts=(Artifact("model.skops", 10, "b" * 64),))
    assert swapped.status is ApprovalStatus.APPROVED and swapped.approval is None


def test_whoever_registered_or_started_the_run_is_responsible() -> None:
    assert _package().lineage.responsible == {"sam", "lena"}


def test_a_package_crn_names_group_and_version() -> None:
    assert str(_package(version=2).crn) == "crn:charter:ml-dev:registry:model-package/churn/2"


@pytest.mark.parametrize("path", [
    "../model.skops", "a/../../etc/passwd", "/etc/passwd", "C:/x", "a\\b", "a/./b", "a//b", "",
    "%2e%2e/x", "x\x00y", ".", "a/..",
])
def test_artifact_paths_that_could_escape_are_refused(path: str) -> None:
    with pytest.raises(ValidationError):
        check_artifact_path(path)


@pytest.mark.parametrize("path", ["\uff0e\uff0e/etc/passwd", "\u2025/etc/passwd", "a\uff0fb", "e\u0301.onnx"])
def test_artifact_paths_that_unicode_normalisation_would_change_are_refused(path: str) -> None:
    with pytest.raises(ValidationError, match="NFKC"):
        check_artifact_path(path)


def test_an_artifact_path_in_normal_form_with_accents_is_accepted() -> None:
    assert check_artifact_path("mod\u00e8le/poids.onnx") == "mod\u00e8le/poids.onnx"


def test_nested_relative_artifact_paths_are_accepted() -> None:
    assert check_artifact_path("model/weights.onnx") == "model/weights.onnx"


def test_duplicate_artifact_paths_are_refused() -> None:
    with pytest.raises(ValidationError, match="unique"):
        _package(artifacts=(Artifact("m", 1, DIGEST), Artifact("m", 1, DIGEST)))


def test_a_digest_must_be_sha256_hex() -> None:
    with pytest.raises(ValidationError):
        Artifact("m", 1, "not-a-digest")


def test_group_readers_are_accounts_or_org_units() -> None:
    group = ModelPackageGroup("ml-shared-services", "churn-ml-dev", readers=("ml-test", "ou:deployments"))
    assert str(group.crn) == "crn:charter:ml-shared-services:registry:model-package-group/churn-ml-dev"
    with pytest.raises(ValidationError):
        ModelPackageGroup("ml-shared-services", "churn", readers=("../x",))
