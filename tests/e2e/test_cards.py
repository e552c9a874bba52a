"""Model cards through the real server and the `charter` CLI: written from a YAML file, submitted,
self-approval refused naming the policy, approved by the governance officer, exported."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from charter.client.client import Client
from charter.errors import Conflict

from .support import ACME_YAML, REPO, CliResult, ServerProcess

Cli = Callable[..., CliResult]
CENTRAL = "ml-shared-services"
CARD_FILE = REPO / "examples" / "acme" / "card.yaml"
MEI_REVIEWS = "  - {principal: mei, account: ml-shared-services, role: governance-officer}"


def _ok(result: CliResult) -> Any:
    assert result.returncode == 0, str(result)
    return result.json() if result.stdout.lstrip().startswith(("{", "[")) else result.stdout


@pytest.fixture
def profiles(cli: Cli, server: ServerProcess, persona_tokens: dict[str, str]) -> Cli:
    """The CLI with a profile per persona, logged in to the session server."""
    for name in ("mei", "grace"):
        _ok(cli("login", "--server", server.url, "--token", persona_tokens[name], "--profile", name))
    return cli


@pytest.fixture
def mei_also_reviews(admin: Client, restore_org: None) -> Iterator[None]:
    """Mei holds both roles in the central account, so only separation of duties stops her."""
    anchor = "  - {principal: grace, account: ml-shared-services, role: governance-officer}"
    admin.apply(ACME_YAML.read_text().replace(anchor, f"{anchor}\n{MEI_REVIEWS}"))
    yield


@pytest.fixture
def group(profiles: Cli) -> str:
    name = f"churn-{uuid.uuid4().hex[:8]}"
    _ok(profiles("--profile", "mei", "--output", "json", "registry", "create-group", name,
                 "--account", CENTRAL, "--description", "churn, promoted from ml-dev"))
    return name


def test_a_card_is_written_from_yaml_reviewed_and_exported(profiles: Cli, group: str, mei_also_reviews: None,
                                                           tmp_path: Path, personas: dict[str, Client]) -> None:
    mei = ("--profile", "mei", "--output", "json")
    written = _ok(profiles(*mei, "cards", "edit", group, "-f", str(CARD_FILE), "--summary", "First review",
                           "--account", CENTRAL))
    assert (written["status"], written["version"], written["author"]) == ("Draft", 1, "mei")
    assert written["document"]["overview"]["riskRating"] == "medium"

    submitted = _ok(profiles(*mei, "cards", "submit", group, "--account", CENTRAL, "--comment", "ready"))
    assert submitted["status"] == "PendingReview"

    refused = profiles("--profile", "mei", "cards", "approve", group, "--account", CENTRAL)
    assert refused.returncode == 1 and "PermissionDenied" in refused.stderr
    assert "card-approver-is-not-author" in refused.stderr
    denials = list(personas["arthur"].audit_records(actor="mei", action="cards:ApproveModelCard"))
    assert denials and denials[-1].outcome == "denied" and denials[-1].policy == "card-approver-is-not-author"

    # Grace reviews in a session as governance officer: the card commands default to its account.
    _ok(profiles("--profile", "grace", "assume-role", "--account", CENTRAL, "--role", "governance-officer"))
    approved = _ok(profiles("--profile", "grace", "--output", "json", "cards", "approve", group,
                            "--comment", "complete", "--version", "1"))
    assert (approved["status"], approved["approved_version"]) == ("Approved", 1)
    assert approved["history"][-1]["actor"] == "grace"

    out = tmp_path / "card.md"
    _ok(profiles("--profile", "grace", "cards", "export", group, "--format", "markdown", "--out", str(out)))
    markdown = out.read_text()
    assert markdown.startswith(f"# Model card: {group}") and "Status: Approved" in markdown
    assert "Prioritise the retention team" in markdown
    page = _ok(profiles("--profile", "grace", "cards", "export", group, "--format", "html"))
    assert page.startswith("<!DOCTYPE html>") and "Approved" in page

    shown = _ok(profiles("--profile", "grace", "cards", "show", group))
    assert "Approved" in shown and "First review" in shown


def test_a_card_file_with_problems_is_refused_naming_the_file_and_each_path(
        profiles: Cli, group: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("overview:\n  riskRating: extreme\n  colour: blue\nevaluation: {}\n")
    result = profiles("--profile", "mei", "cards", "edit", group, "-f", str(bad), "--account", CENTRAL)
    assert result.returncode == 1, str(result)
    assert f"{bad}: overview.riskRating: must be one of" in result.stderr
    assert f"{bad}: overview.colour: unknown field" in result.stderr
    assert f"{bad}: evaluation: is filled automatically" in result.stderr
    missing = profiles("--profile", "mei", "cards", "show", group, "--account", CENTRAL)
    assert missing.returncode == 1 and "NotFound" in missing.stderr


def test_a_data_scientist_cannot_approve_and_a_governance_officer_cannot_edit(
        profiles: Cli, group: str, persona_tokens: dict[str, str]) -> None:
    _ok(profiles("--profile", "mei", "cards", "edit", group, "-f", str(CARD_FILE), "--account", CENTRAL))
    _ok(profiles("--profile", "mei", "cards", "submit", group, "--account", CENTRAL))
    sam = profiles("cards", "approve", group, "--account", CENTRAL, token=persona_tokens["sam"])
    assert sam.returncode == 1 and "PermissionDenied" in sam.stderr
    grace = profiles("--profile", "grace", "cards", "edit", group, "-f", str(CARD_FILE), "--account", CENTRAL)
    assert grace.returncode == 1 and "PermissionDenied" in grace.stderr


def test_a_stale_edit_is_refused_through_the_sdk(personas: dict[str, Client], group: str) -> None:
    mei = personas["mei"]
    mei.edit_model_card(CENTRAL, group, {"overview": {"owner": "mei"}}, summary="v1", expected_version=0)
    mei.edit_model_card(CENTRAL, group, {"overview": {"owner": "priya"}}, summary="v2", expected_version=1)
    with pytest.raises(Conflict):
        mei.edit_model_card(CENTRAL, group, {"overview": {"owner": "sam"}}, summary="late", expected_version=1)
    assert mei.model_card(CENTRAL, group).latest_version == 2
    assert mei.model_card(CENTRAL, group, 1).document["overview"]["owner"] == "mei"
