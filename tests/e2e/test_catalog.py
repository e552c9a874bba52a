"""The template catalog through the real server and the CLI: a platform engineer publishes the
example templates from their folders and from a git repository, shares the portfolio with the
workloads OU and grants it to lead data scientists; lena may launch, sam may not."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from charter.client.client import Client
from charter.errors import PermissionDenied

from .support import REPO, CliResult

TEMPLATES = REPO / "examples" / "acme" / "templates"
SHARED = "ml-shared-services"
Cli = Callable[..., CliResult]


def _ok(result: CliResult) -> Any:
    assert result.returncode == 0, str(result)
    return result.json()


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "priya", "GIT_AUTHOR_EMAIL": "priya@acme.example",
           "GIT_COMMITTER_NAME": "priya", "GIT_COMMITTER_EMAIL": "priya@acme.example"}
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory, persona_tokens: dict[str, str],
            server: Any) -> dict[str, Any]:
    """The ml-templates portfolio with the three example templates, one of them also from git."""
    from .support import charter_env, run_cli

    config = tmp_path_factory.mktemp("catalog-cli")
    priya = charter_env(config, CHARTER_SERVER=server.url, CHARTER_TOKEN=persona_tokens["priya"])

    def as_priya(*args: str) -> CliResult:
        return run_cli(["--output", "json", "catalog", *args, "--account", SHARED], priya)

    out: dict[str, Any] = {"as_priya": as_priya}
    out["portfolio"] = _ok(as_priya("create-portfolio", "ml-templates", "--description", "ML projects"))
    out["published"] = {
        name: _ok(as_priya("publish", f"examples/acme/templates/{name}", "--portfolio", "ml-templates"))
        for name in ("team-workspace", "train-from-dataset", "deploy-realtime-cross-account")}
    repo = tmp_path_factory.mktemp("templates-repo")
    _git(repo, "init", "-q", "-b", "main")
    shutil.copytree(TEMPLATES / "train-from-dataset", repo / "templates" / "train-from-dataset")
    (repo / "templates" / "train-from-dataset" / "README.md").write_text("# train-from-dataset\n\nFrom git.\n")
    (repo / "unrelated.txt").write_text("not part of the template\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "train-from-dataset v2")
    out["repo"], out["commit"] = repo, _git(repo, "rev-parse", "HEAD")
    out["from_git"] = _ok(as_priya("publish", "--git", str(repo), "--ref", "main",
                                   "--path", "templates/train-from-dataset", "--portfolio", "ml-templates"))
    out["shared"] = _ok(as_priya("share", "ml-templates", "--ou", "workloads", "--grant-role", "lead-data-scientist"))
    return out


def test_the_example_templates_publish_from_their_folders(catalog: dict[str, Any]) -> None:
    published = catalog["published"]
    assert {n: (v["version"], v["kind"]) for n, v in published.items()} == {
        "team-workspace": (1, "workspace"), "train-from-dataset": (1, "project"),
        "deploy-realtime-cross-account": (1, "project")}
    train = published["train-from-dataset"]
    assert train["source"]["kind"] == "directory"
    assert {f["path"] for f in train["files"]} == {"product.yaml", "README.md", "pipelines/train.yaml", *(
        f"steps/{n}.py" for n in ("__init__", "table", "ingest", "train", "evaluate", "register"))}
    assert train["parameters"]["properties"]["metric"]["enum"] == ["accuracy", "roc_auc", "f1"]


def test_a_template_publishes_from_a_git_ref_recording_the_commit(catalog: dict[str, Any]) -> None:
    version = catalog["from_git"]
    assert version["version"] == 2
    assert version["source"] == {"kind": "git", "repository": Path(catalog["repo"]).resolve().as_uri(),
                                 "ref": "main", "commit": catalog["commit"], "path": "templates/train-from-dataset"}
    assert "unrelated.txt" not in {f["path"] for f in version["files"]}


def test_a_ref_that_does_not_exist_is_a_clear_error(catalog: dict[str, Any]) -> None:
    result = catalog["as_priya"]("publish", "--git", str(catalog["repo"]), "--ref", "no-such-branch",
                                 "--path", "templates/train-from-dataset", "--portfolio", "ml-templates")
    assert result.returncode != 0
    assert "no-such-branch" in result.stderr and "does not exist" in result.stderr


def test_publishing_the_same_folder_again_is_a_conflict_naming_the_version(catalog: dict[str, Any]) -> None:
    result = catalog["as_priya"]("publish", "examples/acme/templates/team-workspace", "--portfolio", "ml-templates")
    assert result.returncode != 0
    assert "version 1" in result.stderr and "Conflict" in result.stderr


def test_the_share_reaches_the_workloads_ou_with_its_grant(catalog: dict[str, Any]) -> None:
    shared = catalog["shared"]
    assert [s["target"] for s in shared["shares"]] == ["ou:workloads"]
    assert [g["pattern"] for g in shared["grants"]] == ["lead-data-scientist"]


def test_lena_sees_train_from_dataset_among_what_she_may_launch(catalog: dict[str, Any], cli: Cli,
                                                               persona_tokens: dict[str, str]) -> None:
    view = _ok(cli("--output", "json", "catalog", "imported", "--account", "ml-dev", token=persona_tokens["lena"]))
    assert view["roles"] == ["lead-data-scientist"]
    [entry] = [e for e in view["portfolios"] if e["portfolio"]["name"] == "ml-templates"]
    launchable = {p["name"]: p["latest_version"] for p in entry["launchable"]}
    assert launchable["train-from-dataset"] == 2
    table = cli("catalog", "imported", "--account", "ml-dev", token=persona_tokens["lena"])
    assert table.returncode == 0 and "train-from-dataset" in table.stdout


def test_sam_sees_the_portfolio_but_nothing_he_may_launch(catalog: dict[str, Any], cli: Cli,
                                                         persona_tokens: dict[str, str]) -> None:
    view = _ok(cli("--output", "json", "catalog", "imported", "--account", "ml-dev", token=persona_tokens["sam"]))
    [entry] = [e for e in view["portfolios"] if e["portfolio"]["name"] == "ml-templates"]
    assert entry["launchable"] == []
    table = cli("catalog", "imported", "--account", "ml-dev", token=persona_tokens["sam"])
    assert table.returncode == 0 and "nothing you may launch" in table.stdout


def test_a_shared_account_reads_the_version_and_its_files(catalog: dict[str, Any],
                                                          personas: dict[str, Client]) -> None:
    version = personas["sam"].product_version(SHARED, "train-from-dataset", 2)
    readme = b"".join(personas["sam"].download_product_file(SHARED, "train-from-dataset", 2, "README.md"))
    assert readme == b"# train-from-dataset\n\nFrom git.\n"
    assert version.parameters["required"] == ["dataset", "target"]


def test_an_account_outside_the_share_cannot_read_the_portfolio(catalog: dict[str, Any],
                                                                personas: dict[str, Client]) -> None:
    with pytest.raises(PermissionDenied):
        personas["mei"].as_role("ml-test", "ml-engineer").product_version(SHARED, "train-from-dataset", 1)


def test_a_template_above_the_json_body_limit_uploads(catalog: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "big-template"
    shutil.copytree(TEMPLATES / "team-workspace", folder)
    (folder / "product.yaml").write_text((folder / "product.yaml").read_text().replace(
        "name: team-workspace", "name: big-workspace"))
    (folder / "data.bin").write_bytes(os.urandom(300_000))  # incompressible, above the 64 KiB JSON limit
    version = _ok(catalog["as_priya"]("publish", str(folder), "--portfolio", "ml-templates"))
    assert version["product"] == "big-workspace" and any(f["size"] == 300_000 for f in version["files"])
