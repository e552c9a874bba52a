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

from charter.client import models as m
from charter.client.client import Client
from tests.models import skops_model

from .support import ACME_YAML, Crasher, ServerProcess, eventually

CENTRAL = "ml-shared-services"
ROUNDS = 6
ARTIFACT_BYTES = 6 * 1024 * 1024



def _tokens(server: ServerProcess) -> dict[str, str]:
    with Client(server.url, server.admin_token) as admin:
        admin.apply(ACME_YAML.read_text(), filename="examples/acme/charter.yaml")
        return {name: admin.create_token(name).secret for name in ("lena", "sam", "mei", "arthur")}


def _central_packages(client: Client, group: str) -> list[m.PackageOut]:
    try:
        return list(client.packages(CENTRAL, group))
    except Exception:  # noqa: BLE001 - the central group does not exist yet
        return []


def test_promotions_killed_at_random_points_complete_exactly_once(crash_server: ServerProcess) -> None:
    tokens = _tokens(crash_server)
    crasher = Crasher(crash_server)
    group = "crash"
    with Client(crash_server.url, tokens["lena"]) as lena:
        lena.create_group("ml-dev", group, readers=[CENTRAL])
    sources: list[str] = []
    for round_ in range(1, ROUNDS + 1):
        with Client(crash_server.url, tokens["sam"]) as sam, Client(crash_server.url, tokens["lena"]) as lena:
            model = sam.upload_artifact("ml-dev", skops_model())
            weights = sam.upload_artifact("ml-dev", os.urandom(ARTIFACT_BYTES))
            package = sam.register_package("ml-dev", group, m.PackageCreate(format="skops", artifacts=[
                m.ArtifactIn(path="model.skops", sha256=model.sha256),
                m.ArtifactIn(path="weights.bin", sha256=weights.sha256)]))
            lena.approve("ml-dev", group, package.version, f"round {round_}")
            sources.append(f"crn:charter:ml-dev:registry:model-package/{group}/{package.version}")
        crasher.kill_and_restart(0.0, 0.4)

    with Client(crash_server.url, tokens["mei"]) as mei:
        def all_there() -> list[m.PackageOut] | None:
            found = _central_packages(mei, f"{group}-ml-dev")
            return found if len(found) >= ROUNDS else None

        central = eventually(all_there, f"{ROUNDS} central packages ({crasher})")
        assert sorted(p.origin or "" for p in central) == sorted(sources), str(crasher)
        assert [p.version for p in central] == list(range(1, ROUNDS + 1))
        for package in central:
            for artifact in package.artifacts:
                data = b"".join(mei.download_artifact(CENTRAL, artifact.sha256))
                assert hashlib.sha256(data).hexdigest() == artifact.sha256
        card = mei.model_card(CENTRAL, f"{group}-ml-dev")
        documented = [v.package for v in card.versions if v.package]
        assert sorted(documented) == sorted(
            f"crn:charter:{CENTRAL}:registry:model-package/{p.group}/{p.version}" for p in central)

    root = crash_server.data_dir / "artifacts" / CENTRAL / "sha256"
    for blob in root.rglob("*"):
        if blob.is_file():
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob

    with Client(crash_server.url, tokens["arthur"]) as arthur:
        assert arthur.audit_verify().ok
    with Client(crash_server.url, crash_server.admin_token) as admin:
        stuck = [d for account in ("ml-dev", CENTRAL) for d in admin.deliveries(account)
                 if d.status not in ("succeeded",)]
        assert stuck == [], str(crasher)
