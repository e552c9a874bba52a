"""The `charter` command line as a user runs it: a subprocess, a config directory of its own."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from charter.client.client import Client
from charter.errors import Unauthenticated

from .support import ACME_YAML, REPO, CliResult, ServerProcess, charter_env, run_cli

Cli = Callable[..., CliResult]


@pytest.fixture
def logged_in_as_lena(cli: Cli, server: ServerProcess, persona_tokens: dict[str, str]) -> str:
    result = cli("login", "--server", server.url, "--token", persona_tokens["lena"], "--profile", "e2e")
    assert result.returncode == 0, str(result)
    return "e2e"


def test_login_checks_the_token_and_saves_a_profile(cli: Cli, server: ServerProcess,
                                                    persona_tokens: dict[str, str], cli_config: Path) -> None:
    result = cli("login", "--server", server.url, "--token", persona_tokens["lena"], "--profile", "work")

    assert result.returncode == 0, str(result)
    assert "as lena (profile work)" in result.stdout
    saved = json.loads((cli_config / "profiles.json").read_text())
    assert saved["default"] == "work"
    assert saved["profiles"]["work"] == {"server": server.url, "token": persona_tokens["lena"], "session": None}
    assert stat.S_IMODE((cli_config / "profiles.json").stat().st_mode) == 0o600


def test_login_with_a_bad_token_fails_and_saves_nothing(cli: Cli, server: ServerProcess, cli_config: Path) -> None:
    result = cli("login", "--server", server.url, "--token", "cht_0000000000000000_wrong", "--profile", "bad")

    assert result.returncode == 1
    assert "Unauthenticated" in result.stderr
    assert not (cli_config / "profiles.json").exists()


def test_whoami_uses_the_named_profile(cli: Cli, logged_in_as_lena: str) -> None:
    result = cli("--profile", logged_in_as_lena, "whoami")

    assert result.returncode == 0, str(result)
    assert "lena (person) via cht:" in result.stdout
    assert "ml-dev" in result.stdout and "lead-data-scientist" in result.stdout


def test_whoami_without_a_profile_uses_the_one_logged_in_last(cli: Cli, logged_in_as_lena: str) -> None:
    result = cli("--output", "json", "whoami")

    assert result.returncode == 0, str(result)
    assert result.json()["principal"]["name"] == "lena"  # type: ignore[index]


def test_whoami_before_login_says_how_to_log_in(cli: Cli) -> None:
    result = cli("whoami")

    assert result.returncode == 1
    assert "charter login" in result.stderr


def test_assume_role_then_whoami_shows_the_session(cli: Cli, logged_in_as_lena: str) -> None:
    assumed = cli("assume-role", "--account", "ml-dev", "--role", "lead-data-scientist")
    me = cli("whoami")

    assert assumed.returncode == 0, str(assumed)
    assert "Acting as lead-data-scientist in ml-dev" in assumed.stdout
    assert me.returncode == 0, str(me)
    assert "via chs:" in me.stdout
    assert "Session: lead-data-scientist in ml-dev" in me.stdout


def test_assume_role_clear_returns_to_the_profile_token(cli: Cli, logged_in_as_lena: str) -> None:
    cli("assume-role", "--account", "ml-dev", "--role", "lead-data-scientist")

    cleared = cli("assume-role", "--clear")
    me = cli("--output", "json", "whoami")

    assert cleared.returncode == 0, str(cleared)
    assert me.json()["session"] is None  # type: ignore[index]


def test_expired_cli_session_says_to_assume_the_role_again(cli: Cli, logged_in_as_lena: str,
                                                            cli_config: Path) -> None:
    cli("assume-role", "--account", "ml-dev", "--role", "lead-data-scientist", "--duration", "2m")
    profiles = json.loads((cli_config / "profiles.json").read_text())
    profiles["profiles"][logged_in_as_lena]["session"]["expires_at"] = "2000-01-01T00:00:00+00:00"
    (cli_config / "profiles.json").write_text(json.dumps(profiles))

    result = cli("whoami")

    assert result.returncode == 1
    assert "expired" in result.stderr
    assert "assume-role" in result.stderr


def test_assume_role_without_a_binding_exits_1_naming_the_policy(cli: Cli, logged_in_as_lena: str) -> None:
    result = cli("assume-role", "--account", "ml-prod", "--role", "ml-engineer")

    assert result.returncode == 1
    assert "PermissionDenied" in result.stderr
    assert "lena holds no role binding as ml-engineer in ml-prod" in result.stderr
    assert "policy: default-deny" in result.stderr


def test_json_output_parses(cli: Cli, admin_token: str) -> None:
    for args in (("whoami",), ("accounts", "list"), ("principals", "list"), ("org", "show"),
                 ("policies", "list"), ("audit", "list", "--limit", "3")):
        result = cli("--output", "json", *args, token=admin_token)
        assert result.returncode == 0, str(result)
        json.loads(result.stdout)


def test_tokens_create_list_and_revoke(cli: Cli, admin_token: str, server: ServerProcess) -> None:
    created = cli("--output", "json", "tokens", "create", "--principal", "sam", "--expires", "1h",
                  "--description", "e2e cli", token=admin_token)
    assert created.returncode == 0, str(created)
    issued = created.json()
    assert isinstance(issued, dict)
    token_id, secret = issued["token"]["id"], issued["secret"]
    with Client(server.url, secret) as sam:
        assert sam.whoami().principal.name == "sam"

    listed = cli("--output", "json", "tokens", "list", "--principal", "sam", token=admin_token)
    assert listed.returncode == 0, str(listed)
    assert token_id in {t["id"] for t in listed.json()}  # type: ignore[union-attr, index]
    assert secret.split("_", 2)[2] not in listed.stdout

    revoked = cli("tokens", "revoke", token_id, token=admin_token)
    assert revoked.returncode == 0, str(revoked)
    assert f"Revoked token {token_id} of sam" in revoked.stdout
    with Client(server.url, secret) as sam, pytest.raises(Unauthenticated):
        sam.whoami()


def test_tokens_create_prints_the_secret_once_in_table_output(cli: Cli, admin_token: str) -> None:
    result = cli("tokens", "create", "--principal", "mei", "--expires", "2h", token=admin_token)

    assert result.returncode == 0, str(result)
    assert "Secret (shown once)" in result.stdout
    assert "cht_" in result.stdout


def test_tokens_create_with_a_bad_duration_exits_1(cli: Cli, admin_token: str) -> None:
    result = cli("tokens", "create", "--principal", "mei", "--expires", "soon", token=admin_token)

    assert result.returncode == 1
    assert "invalid duration" in result.stderr


def test_data_scientist_tokens_create_exits_1_naming_the_policy(cli: Cli, persona_tokens: dict[str, str]) -> None:
    result = cli("tokens", "create", "--principal", "sam", token=persona_tokens["sam"])

    assert result.returncode == 1
    assert "PermissionDenied" in result.stderr
    assert "policy: default-deny" in result.stderr


def test_apply_plan_of_the_applied_file_prints_no_changes(cli: Cli, admin_token: str) -> None:
    result = cli("apply", "-f", str(ACME_YAML), "--plan", token=admin_token)

    assert result.returncode == 0, str(result)
    assert "No changes" in result.stdout


def test_apply_plan_lists_the_changes_and_applies_none(cli: Cli, admin_token: str, tmp_path: Path,
                                                       admin: Client) -> None:
    changed = tmp_path / "charter.yaml"
    changed.write_text(ACME_YAML.read_text().replace(
        "\nprincipals:\n", "\n  - {name: ml-sandbox, kind: workload, stage: dev, ou: workloads}\nprincipals:\n", 1))
    (tmp_path / "templates").symlink_to(ACME_YAML.parent / "templates")  # product folders are relative to the file

    result = cli("apply", "-f", str(changed), "--plan", token=admin_token)

    assert result.returncode == 0, str(result)
    assert "+ account ml-sandbox" in result.stdout
    assert "nothing was changed" in result.stdout
    assert "ml-sandbox" not in {a.name for a in admin.accounts()}


def test_apply_of_a_bad_file_exits_1_naming_file_and_field(cli: Cli, admin_token: str, tmp_path: Path,
                                                           admin: Client) -> None:
    bad = tmp_path / "bad-charter.yaml"
    bad.write_text(ACME_YAML.read_text().replace(
        "\nprincipals:\n", "\n  - {name: ml-sandbox, kind: workload, stage: staging}\nprincipals:\n", 1))

    result = cli("apply", "-f", str(bad), token=admin_token)

    assert result.returncode == 1
    assert str(bad) in result.stderr
    assert "accounts[6].stage" in result.stderr
    assert "ValidationError" in result.stderr
    assert "ml-sandbox" not in {a.name for a in admin.accounts()}


def test_apply_of_a_missing_file_exits_1_naming_it(cli: Cli, admin_token: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"

    result = cli("apply", "-f", str(missing), token=admin_token)

    assert result.returncode == 1
    assert str(missing) in result.stderr


def test_audit_verify_exits_0_on_a_clean_trail(cli: Cli, persona_tokens: dict[str, str]) -> None:
    result = cli("audit", "verify", token=persona_tokens["arthur"])

    assert result.returncode == 0, str(result)
    assert "The audit trail verifies" in result.stdout


def test_audit_verify_as_a_data_scientist_exits_1(cli: Cli, persona_tokens: dict[str, str]) -> None:
    result = cli("audit", "verify", token=persona_tokens["sam"])

    assert result.returncode == 1
    assert "PermissionDenied" in result.stderr


def test_audit_export_writes_json_lines_to_a_file(cli: Cli, persona_tokens: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "trail.jsonl"

    result = cli("audit", "export", "--out", str(out), "--action", "org:Init", token=persona_tokens["arthur"])

    assert result.returncode == 0, str(result)
    lines = out.read_text().splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["org:Init"]
    assert "Wrote 1 records" in result.stderr


def test_demo_prints_the_url_and_exits(tmp_path: Path) -> None:
    config = tmp_path / "config"
    data = tmp_path / "demo-data"

    result = run_cli(["--output", "json", "demo", "--port", "0", "--exit", "--data-dir", str(data)],
                     charter_env(config), cwd=REPO)

    assert result.returncode == 0, str(result)
    summary = result.json()
    assert isinstance(summary, dict)
    assert summary["url"].startswith("http://127.0.0.1:")
    assert summary["audit_ok"] is True
    assert summary["changes_applied"] > 0
    assert "ml-prod" in summary["accounts"]
    assert json.loads((config / "profiles.json").read_text())["profiles"]["demo"]["server"] == summary["url"]
    steps = {step["step"]: step for step in summary["golden_path"]}
    assert steps["tries to approve churn/1, her own run's model: refused"]["detail"] == "denied by no-self-approval"
    # v1 came from the pipeline the launch started (lena's), v2 from sam's run of it
    runs = summary["runs"]
    assert [(r["started_by"], r["version"]) for r in runs] == [("lena", 1), ("sam", 2)]
    assert all(r["metrics"]["roc_auc"] > 0.9 for r in runs)
    assert steps["reads it without a subscription: refused"]["detail"] == "denied by no-grant-no-read"
    assert summary["central_package"] == "churn-ml-dev/1"
    assert summary["card"] == {"status": "Approved", "version": 2}
    # the deployment: tests passed in ml-test, refused before the card was approved, then production
    assert all(check["passed"] for check in summary["integration_tests"])
    assert "production-needs-an-approved-card" in steps[
        "tries to approve production while the card is under review: refused"]["detail"]
    assert summary["deployment"] == "Succeeded"
    assert len(summary["prediction"]) == 3 and set(summary["prediction"]) <= {"0", "1"}
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{summary['url']}/healthz", timeout=1.0)  # --exit stopped it


def test_demo_in_table_output_prints_the_url(tmp_path: Path) -> None:
    result = run_cli(["demo", "--port", "0", "--exit", "--data-dir", str(tmp_path / "demo-data")],
                     charter_env(tmp_path / "config"))

    assert result.returncode == 0, str(result)
    assert "Charter is running at http://127.0.0.1:" in result.stdout
    assert "✓ grace approves the model card" in result.stdout
