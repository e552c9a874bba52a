"""Account vending and the declared catalog through a real server and the CLI, on a server of this
module's own (its catalog is published from charter.yaml, which the session server's tests do by
hand): apply publishes the example's products once, lena asks for ml-dev-2 from the dev-account
blueprint, the admin approves, and lena finds the imported templates there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from charter.client.client import Client

from .support import REPO, CliResult, ServerProcess, charter_env, init_org, run_cli

EXAMPLE = REPO / "examples" / "acme" / "charter.yaml"
SHARED = "ml-shared-services"


@pytest.fixture(scope="module")
def vending(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("charter-vending")
    data_dir, config_dir = root / "data", root / "config"
    config_dir.mkdir()
    token = init_org(data_dir, config_dir)
    server = ServerProcess(data_dir, config_dir, root / "server.log", token).start()
    admin = Client(server.url, token)
    try:
        def cli(*args: str, as_token: str = token) -> CliResult:
            env = charter_env(root / "cli", CHARTER_SERVER=server.url, CHARTER_TOKEN=as_token)
            return run_cli(list(args), env)

        out: dict[str, Any] = {"cli": cli, "admin": admin}
        out["plan"] = _ok(cli("--output", "json", "apply", "-f", str(EXAMPLE), "--plan"))
        out["products_after_plan"] = list(admin.products(SHARED)) if _has(admin, SHARED) else []
        out["first"] = _ok(cli("--output", "json", "apply", "-f", str(EXAMPLE)))
        out["second"] = _ok(cli("--output", "json", "apply", "-f", str(EXAMPLE)))
        out["second_text"] = cli("apply", "-f", str(EXAMPLE))
        out["lena"] = admin.create_token("lena", description="e2e vending").secret
        yield out
    finally:
        admin.close()
        server.stop()


def _has(admin: Client, account: str) -> bool:
    return any(a.name == account for a in admin.accounts())


def _ok(result: CliResult) -> Any:
    assert result.returncode == 0, str(result)
    return result.json()


def _outcomes(applied: dict[str, Any]) -> dict[str, str]:
    return {p["product"]: p["outcome"] for p in applied["products"]}


def test_the_plan_shows_the_products_it_would_publish_and_publishes_none(vending: dict[str, Any]) -> None:
    assert _outcomes(vending["plan"]) == {"train-from-dataset": "would-publish", "team-workspace": "would-publish",
                                          "deploy-realtime-cross-account": "would-publish"}
    assert vending["plan"]["applied"] is False and vending["products_after_plan"] == []
    kinds = {(ch["kind"], ch["name"]) for ch in vending["plan"]["changes"]}
    assert ("portfolio", f"{SHARED}/ml-projects") in kinds and ("blueprint", "dev-account") in kinds


def test_apply_publishes_the_declared_products_into_their_portfolios(vending: dict[str, Any]) -> None:
    assert _outcomes(vending["first"]) == {"train-from-dataset": "published", "team-workspace": "published",
                                           "deploy-realtime-cross-account": "published"}
    products = {p.name: p.portfolio for p in vending["admin"].products(SHARED)}
    assert products == {"train-from-dataset": "ml-projects", "deploy-realtime-cross-account": "ml-projects",
                        "team-workspace": "ml-admin"}


def test_a_second_apply_changes_nothing_and_publishes_nothing(vending: dict[str, Any]) -> None:
    second = vending["second"]
    assert second["changes"] == []
    assert set(_outcomes(second).values()) == {"unchanged"}
    assert {p.latest_version for p in vending["admin"].products(SHARED)} == {1}
    text = vending["second_text"]
    assert text.returncode == 0 and "No changes" in text.stdout and "unchanged" in text.stdout


def test_lena_requests_ml_dev_2_the_admin_approves_and_she_launches_there(vending: dict[str, Any]) -> None:
    cli, lena = vending["cli"], vending["lena"]
    requested = _ok(cli("--output", "json", "accounts", "request", "ml-dev-2", "--ou", "workloads", "--kind", "workload",
                        "--stage", "dev", "--blueprint", "dev-account", "--reason", "a second team", as_token=lena))
    assert (requested["status"], requested["requested_by"]) == ("Pending", "lena")
    pending = _ok(cli("--output", "json", "accounts", "requests", "--status", "Pending"))
    assert [r["id"] for r in pending] == [requested["id"]]

    approved = _ok(cli("--output", "json", "accounts", "approve", requested["id"], "--comment", "welcome"))
    assert (approved["status"], approved["decided_by"]) == ("Approved", "admin")
    bindings = {(b.principal, b.role) for b in vending["admin"].role_bindings("ml-dev-2")}
    assert ("lena", "lead-data-scientist") in bindings and ("priya", "platform-engineer") in bindings

    view = _ok(cli("--output", "json", "catalog", "imported", "--account", "ml-dev-2", as_token=lena))
    [entry] = [e for e in view["portfolios"] if e["portfolio"]["name"] == "ml-projects"]
    assert "train-from-dataset" in {p["name"] for p in entry["launchable"]}
    table = cli("catalog", "imported", "--account", "ml-dev-2", as_token=lena)
    assert table.returncode == 0 and "train-from-dataset" in table.stdout

    again = cli("accounts", "approve", requested["id"])
    assert again.returncode != 0 and "InvalidTransition" in again.stderr
    reapplied = _ok(cli("--output", "json", "apply", "-f", str(EXAMPLE)))
    assert reapplied["changes"] == []
    assert ("lena", "lead-data-scientist") in {(b.principal, b.role) for b in vending["admin"].role_bindings("ml-dev-2")}


def test_a_data_scientist_may_not_request_an_account(vending: dict[str, Any]) -> None:
    sam = vending["admin"].create_token("sam", description="e2e vending").secret
    refused = vending["cli"]("accounts", "request", "ml-sam", "--ou", "workloads", "--stage", "dev",
                             "--blueprint", "dev-account", "--reason", "mine", as_token=sam)
    assert refused.returncode != 0 and "PermissionDenied" in refused.stderr


def test_a_request_for_an_existing_account_is_refused_clearly(vending: dict[str, Any]) -> None:
    refused = vending["cli"]("accounts", "request", "ml-dev", "--ou", "workloads", "--stage", "dev",
                             "--blueprint", "dev-account", "--reason", "again", as_token=vending["lena"])
    assert refused.returncode != 0 and "already exists" in refused.stderr
