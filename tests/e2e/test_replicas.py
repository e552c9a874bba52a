"""Three `charter server` processes on one PostgreSQL database, used round-robin: concurrent work
gives exactly what one server would — gap-free versions, one central package per approval — and
the audit trail they all wrote verifies."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from charter.client import models as m
from charter.client.client import Client
from tests.models import skops_model

from .support import ACME_YAML, ServerProcess, charter_env, run_cli

PG_URL = os.environ.get("CHARTER_TEST_DATABASE_URL")
REPLICAS = 3
GROUP = "churn-replicas"

pytestmark = pytest.mark.postgres


class RoundRobin:
    """One client per server, handed out in turn, as a round-robin load balancer would."""

    def __init__(self, urls: list[str], token: str) -> None:
        self.clients = [Client(url, token, timeout=60) for url in urls]
        self._turn = itertools.cycle(range(len(self.clients)))

    def next(self) -> Client:
        return self.clients[next(self._turn)]

    def close(self) -> None:
        for client in self.clients:
            client.close()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RoundRobin]]:
    if not PG_URL:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI runs the replica tests on PostgreSQL: set CHARTER_TEST_DATABASE_URL")
        pytest.skip("CHARTER_TEST_DATABASE_URL is not set")
    from tests.integration.conftest import _drop_postgres_database, _fresh_postgres_database

    url = _fresh_postgres_database(PG_URL)
    root = tmp_path_factory.mktemp("replicas")
    data, config = root / "data", root / "config"
    env = {"CHARTER_DATABASE_URL": url}
    init = run_cli(["--output", "json", "init", "--org", "acme", "--data-dir", str(data)],
                   charter_env(config, data, **env))
    assert init.returncode == 0, str(init)
    token = str(init.json()["token"])
    servers = [ServerProcess(data, config, root / f"server-{i}.log", token, extra_env=env)
               for i in range(REPLICAS)]
    pools: dict[str, RoundRobin] = {}
    try:
        for server in servers:
            server.start()
        urls = [s.url for s in servers]
        with Client(urls[0], token) as admin:
            admin.apply(ACME_YAML.read_text(), filename="examples/acme/charter.yaml")
            pools = {"admin": RoundRobin(urls, token)} | {
                name: RoundRobin(urls, admin.create_token(name, description="replicas").secret)
                for name in ("sam", "lena", "mei", "arthur")}
        yield pools
    finally:
        for pool in pools.values():
            pool.close()
        for server in servers:
            server.stop()
        _drop_postgres_database(url)


def _register(pool: RoundRobin, digest: str, n: int) -> int:
    return pool.next().register_package("ml-dev", GROUP, m.PackageCreate(
        format="skops", artifacts=[m.ArtifactIn(path="model.skops", sha256=digest)],
        lineage=m.LineageIn(run=f"replica-run-{n}"))).version


def test_three_servers_on_one_database_number_32_concurrent_registrations_without_gap_or_repeat(
        replicas: dict[str, RoundRobin]) -> None:
    sam, lena = replicas["sam"], replicas["lena"]
    digest = sam.next().upload_artifact("ml-dev", skops_model(), model_format="skops").sha256
    lena.next().create_group("ml-dev", GROUP, readers=["ml-shared-services"])
    with ThreadPoolExecutor(32) as pool:
        versions = list(pool.map(lambda n: _register(sam, digest, n), range(32)))
    assert sorted(versions) == list(range(1, 33))
    listed = sorted(p.version for p in sam.next().packages("ml-dev", GROUP))
    assert listed == list(range(1, 33))


def test_approvals_through_different_servers_promote_each_package_exactly_once(
        replicas: dict[str, RoundRobin]) -> None:
    lena, mei = replicas["lena"], replicas["mei"]
    chosen = [3, 8, 13, 21, 29, 32]
    with ThreadPoolExecutor(len(chosen)) as pool:
        decided = list(pool.map(lambda v: lena.next().approve("ml-dev", GROUP, v, "replicas").status, chosen))
    assert decided == ["Approved"] * len(chosen)
    central = f"{GROUP}-ml-dev"
    deadline = time.monotonic() + 90
    origins: list[str] = []
    while time.monotonic() < deadline:
        try:
            origins = [str(p.origin) for p in mei.next().packages("ml-shared-services", central)]
        except Exception:  # noqa: BLE001 - the group appears with the first promotion
            origins = []
        if len(origins) >= len(chosen):
            break
        time.sleep(0.2)
    time.sleep(1.0)  # let any duplicate that three dispatchers could make show up
    origins = [str(p.origin) for p in mei.next().packages("ml-shared-services", central)]
    assert sorted(origins) == sorted(f"crn:charter:ml-dev:registry:model-package/{GROUP}/{v}" for v in chosen)
    versions = sorted(p.version for p in mei.next().packages("ml-shared-services", central))
    assert versions == list(range(1, len(chosen) + 1))


def test_the_audit_trail_written_by_three_servers_verifies_on_each(replicas: dict[str, RoundRobin]) -> None:
    for client in replicas["arthur"].clients:
        verified = client.audit_verify()
        assert verified.ok, verified
        assert verified.records > 50
