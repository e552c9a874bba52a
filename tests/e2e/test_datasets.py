"""Governed data through the real server and the CLI: a data engineer registers a real CSV (the
breast-cancer data bundled with scikit-learn), a data scientist subscribes, the owner approves,
and the bytes read back under the grant are the bytes registered — with the read kept as lineage."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from charter.client.client import Client
from charter.errors import PermissionDenied
from charter.examples.datasets import write_example_csv

from .support import CliResult

Cli = Callable[..., CliResult]


def _ok(result: CliResult) -> Any:
    assert result.returncode == 0, str(result)
    return result.json()


@pytest.fixture
def bank_csv(tmp_path: Path) -> Path:
    return write_example_csv(tmp_path / "bank.csv")


def test_the_golden_path_registers_subscribes_approves_and_reads_back_identical_bytes(
        cli: Cli, persona_tokens: dict[str, str], bank_csv: Path, tmp_path: Path) -> None:
    name = f"bank-marketing-{uuid.uuid4().hex[:6]}"
    diego, sam, lena = (persona_tokens[p] for p in ("diego", "sam", "lena"))
    version = _ok(cli("--output", "json", "data", "register", name, "--file", str(bank_csv),
                      "--description", "breast-cancer features and the target y", token=diego))
    assert (version["version"], version["rows"], version["format"]) == (1, 569, "csv")
    assert version["columns"][0] == {"name": "mean_radius", "dtype": "float64"}
    assert version["columns"][-1] == {"name": "y", "dtype": "int64"}

    catalogue = _ok(cli("--output", "json", "data", "list", token=sam))  # published to the org
    assert name in [d["name"] for d in catalogue]

    sub = _ok(cli("--output", "json", "data", "subscribe", name, "--reason", "churn model",
                  "--account", "ml-dev", token=sam))
    assert sub["status"] == "Pending" and sub["requested_by"] == "sam"

    early = cli("data", "read", name, "--account", "ml-dev", "--out", str(tmp_path / "early.csv"), token=sam)
    assert early.returncode != 0 and "no-grant-no-read" in early.stdout + early.stderr
    assert not (tmp_path / "early.csv").exists()

    refused = cli("data", "approve", sub["id"], token=lena)
    assert refused.returncode != 0

    approved = _ok(cli("--output", "json", "data", "approve", sub["id"], "--expires", "30d",
                       "--comment", "ok for churn", token=diego))
    assert approved["status"] == "Approved" and approved["grant"]["active"] and approved["expires_at"]

    out = tmp_path / "read.csv"
    read = _ok(cli("--output", "json", "data", "read", f"{name}@1", "--account", "ml-dev", "--run", "run-1",
                   "--out", str(out), token=sam))
    assert out.read_bytes() == bank_csv.read_bytes() and read["sha256"] == version["sha256"]

    reads = _ok(cli("--output", "json", "data", "reads", name, token=diego))
    assert [(r["reader"], r["version"], r["run"], r["for_account"]) for r in reads] == [
        ("sam", 1, "run-1", "ml-dev")]

    seen_by_dev = _ok(cli("--output", "json", "data", "subscriptions", "--account", "ml-dev", token=lena))
    assert sub["id"] in [s["id"] for s in seen_by_dev]


def test_a_read_without_a_grant_is_refused_and_audited(personas: dict[str, Client], bank_csv: Path) -> None:
    name = f"bank-{uuid.uuid4().hex[:6]}"
    personas["diego"].register_dataset("data-governance", name, bank_csv)
    with pytest.raises(PermissionDenied) as denied:
        b"".join(personas["mei"].read_dataset("data-governance", name, for_account="ml-shared-services"))
    assert denied.value.details["policy"] == "no-grant-no-read"
    records = list(personas["arthur"].audit_records(actor="mei", action="data:ReadDataset"))
    assert records and records[-1].outcome == "denied" and records[-1].policy == "no-grant-no-read"


def test_a_revoked_subscription_stops_reads(personas: dict[str, Client], bank_csv: Path) -> None:
    name = f"bank-{uuid.uuid4().hex[:6]}"
    personas["diego"].register_dataset("data-governance", name, bank_csv)
    sub = personas["lena"].subscribe("data-governance", name, subscriber="ml-dev", reason="churn")
    personas["diego"].approve_subscription("data-governance", sub.id)
    assert b"".join(personas["lena"].read_dataset("data-governance", name, for_account="ml-dev"))
    revoked = personas["diego"].revoke_subscription("data-governance", sub.id, "project closed")
    assert revoked.status == "Revoked" and revoked.grant is not None and not revoked.grant.active
    with pytest.raises(PermissionDenied):
        b"".join(personas["lena"].read_dataset("data-governance", name, for_account="ml-dev"))


def test_a_dataset_file_above_the_json_limit_uploads_and_versions_increase(personas: dict[str, Client],
                                                                          tmp_path: Path) -> None:
    name = f"big-{uuid.uuid4().hex[:6]}"
    rows = "".join(f"{i},{i * 0.5},row-{i}\n" for i in range(150_000))  # ~3 MB, several chunks
    big = tmp_path / "big.csv"
    big.write_text("id,score,label\n" + rows)
    first = personas["diego"].register_dataset("data-governance", name, big)
    second = personas["diego"].register_dataset("data-governance", name, big.read_bytes() + b"1,2,x\n")
    assert (first.version, first.rows, second.version, second.rows) == (1, 150_000, 2, 150_001)
    assert [v.version for v in personas["sam"].dataset_versions("data-governance", name)] == [1, 2]
