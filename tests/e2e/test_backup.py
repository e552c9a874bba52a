"""`charter backup` and `charter restore` through the CLI, and a real server on the restored data
that passes `charter audit verify`."""

from __future__ import annotations

import shutil
from pathlib import Path

from .support import ACME_YAML, ServerProcess, charter_env, run_cli


def test_a_backup_restored_into_a_new_data_dir_serves_and_its_audit_trail_verifies(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    env = charter_env(tmp_path / "config", source)
    init = run_cli(["--output", "json", "init", "--org", "acme", "--data-dir", str(source)], env)
    assert init.returncode == 0, str(init)
    token = init.json()["token"]
    old = ServerProcess(source, tmp_path / "config", tmp_path / "old.log").start()
    try:
        applied = run_cli(["apply", "-f", str(ACME_YAML)], charter_env(
            tmp_path / "config", CHARTER_SERVER=old.url, CHARTER_TOKEN=token))
        assert applied.returncode == 0, str(applied)
    finally:
        old.stop()

    made = run_cli(["--output", "json", "backup", "--out", str(tmp_path / "acme.tar.gz"),
                    "--data-dir", str(source)], env)
    assert made.returncode == 0, str(made)
    assert made.json()["rows"] > 0 and made.json()["blobs"] > 0  # the published products' files

    (target / "keys").mkdir(parents=True)
    shutil.copy(source / "keys" / "audit-ed25519.pem", target / "keys" / "audit-ed25519.pem")
    restored = run_cli(["--output", "json", "restore", str(tmp_path / "acme.tar.gz"), "--data-dir", str(target)], env)
    assert restored.returncode == 0, str(restored)
    assert restored.json()["rows"] == made.json()["rows"]

    again = run_cli(["restore", str(tmp_path / "acme.tar.gz"), "--data-dir", str(target)], env)
    assert again.returncode != 0 and "already holds an organization" in str(again)

    new = ServerProcess(target, tmp_path / "config", tmp_path / "new.log").start()
    try:
        as_admin = charter_env(tmp_path / "config", CHARTER_SERVER=new.url, CHARTER_TOKEN=token)
        verified = run_cli(["--output", "json", "audit", "verify"], as_admin)
        assert verified.returncode == 0, str(verified)
        assert verified.json()["ok"] is True and verified.json()["records"] > 0
        accounts = run_cli(["--output", "json", "accounts", "list"], as_admin)
        assert "ml-prod" in {a["name"] for a in accounts.json()}
    finally:
        new.stop()
