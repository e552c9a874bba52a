"""SIGKILL at any point of a promotion: after each restart nothing is lost, nothing is doubled.

A server of its own (the session's server is never killed) promotes a run of approved packages,
each with an artifact of its own so every promotion really copies bytes. Right after each approval
the server is killed with SIGKILL after a random delay — during routing, the cross-account
delivery, the artifact copy or the registration — and started again on the same data. At the end
every approval has exactly one central package and one card version, every blob in the central
store is whole and hashes to its name, no delivery is stuck and the audit chain verifies.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.client import models as m
from charter.client.client import Client
from tests.models import skops_model

from .support import ACME_YAML, ServerProcess, init_org

CENTRAL = "ml-shared-services"
ROUNDS = 6
ARTIFACT_BYTES = 6 * 1024 * 1024
# Short leases and retries, so that work a killed server had claimed is taken up again quickly.
FAST_RETRIES = {
    "CHARTER_DISPATCH_LEASE_SECONDS": "1",
    "CHARTER_DISPATCH_RETRY_BASE_SECONDS": "0.05",
    "CHARTER_DISPATCH_RETRY_CAP_SECONDS": "0.5",
    "CHARTER_DISPATCH_POLL_SECONDS": "0.05",
}


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerProcess]:
    data_dir, config_dir = tmp_path / "data", tmp_path / "config"
    config_dir.mkdir()
    token = init_org(data_dir, config_dir)
    server = ServerProcess(data_dir, config_dir, tmp_path / "server.log", token, extra_env=FAST_RETRIES).start()
    try:
        yield server
    finally:
        server.stop()


def _tokens(server: ServerProcess) -> dict[str, str]:
    with Client(server.url, server.admin_token) as admin:
        admin.apply(ACME_YAML.read_text(), filename="examples/acme/charter.yaml")
        return {name: admin.create_token(name).secret for name in ("lena", "sam", "mei", "arthur")}


def _central_packages(client: Client, group: str) -> list[m.PackageOut]:
    try:
        return list(client.packages(CENTRAL, group))
    except Exception:  # noqa: BLE001 - the central group does not exist yet
        return []


def test_promotions_killed_at_random_points_complete_exactly_once(own_server: ServerProcess) -> None:
    tokens = _tokens(own_server)
    rng = random.Random(int.from_bytes(os.urandom(4)))
    group = "crash"
    with Client(own_server.url, tokens["lena"]) as lena:
        lena.create_group("ml-dev", group, readers=[CENTRAL])
    sources: list[str] = []
    delays = []
    for round_ in range(1, ROUNDS + 1):
        with Client(own_server.url, tokens["sam"]) as sam, Client(own_server.url, tokens["lena"]) as lena:
            model = sam.upload_artifact("ml-dev", skops_model())
            weights = sam.upload_artifact("ml-dev", os.urandom(ARTIFACT_BYTES))
            package = sam.register_package("ml-dev", group, m.PackageCreate(format="skops", artifacts=[
                m.ArtifactIn(path="model.skops", sha256=model.sha256),
                m.ArtifactIn(path="weights.bin", sha256=weights.sha256)]))
            lena.approve("ml-dev", group, package.version, f"round {round_}")
            sources.append(f"crn:charter:ml-dev:registry:model-package/{group}/{package.version}")
        delay = rng.uniform(0.0, 0.4)
        delays.append(round(delay, 3))
        time.sleep(delay)
        own_server.kill()
        own_server.start()

    with Client(own_server.url, tokens["mei"]) as mei:
        deadline = time.monotonic() + 60
        while len(_central_packages(mei, f"{group}-ml-dev")) < ROUNDS and time.monotonic() < deadline:
            time.sleep(0.1)
        central = _central_packages(mei, f"{group}-ml-dev")
        assert sorted(p.origin or "" for p in central) == sorted(sources), f"kill delays {delays}"
        assert [p.version for p in central] == list(range(1, ROUNDS + 1))
        for package in central:
            for artifact in package.artifacts:
                data = b"".join(mei.download_artifact(CENTRAL, artifact.sha256))
                assert hashlib.sha256(data).hexdigest() == artifact.sha256
        card = mei.model_card(CENTRAL, f"{group}-ml-dev")
        documented = [v.package for v in card.versions if v.package]
        assert sorted(documented) == sorted(
            f"crn:charter:{CENTRAL}:registry:model-package/{p.group}/{p.version}" for p in central)

    root = own_server.data_dir / "artifacts" / CENTRAL / "sha256"
    for blob in root.rglob("*"):
        if blob.is_file():
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob

    with Client(own_server.url, tokens["arthur"]) as arthur:
        assert arthur.audit_verify().ok
    with Client(own_server.url, own_server.admin_token) as admin:
        stuck = [d for account in ("ml-dev", CENTRAL) for d in admin.deliveries(account)
                 if d.status not in ("succeeded",)]
        assert stuck == [], f"kill delays {delays}"
