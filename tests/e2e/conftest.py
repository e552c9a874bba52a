"""The e2e tier: one real `charter server` for the session, the acme organization applied, a client
per persona. Tests that change the organization put it back before they return."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from charter.client.client import Client
from tests.integration.test_webhooks import Receiver

from .support import (
    ACME_YAML,
    FAST_RECOVERY,
    PERSONAS,
    CliResult,
    ServerProcess,
    charter_env,
    init_org,
    own_server,
    run_cli,
)


@pytest.fixture(scope="session")
def acme_yaml() -> str:
    return ACME_YAML.read_text()


def _s3_store(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings that put every account's artifacts in a fresh bucket of the session's SeaweedFS."""
    from tests.seaweed import CREDENTIALS, SeaweedFS

    s3: SeaweedFS = request.getfixturevalue("seaweedfs")
    bucket = f"charter-e2e-{uuid.uuid4().hex[:8]}"
    s3.client.create_bucket(Bucket=bucket)
    return {"CHARTER_ARTIFACT_STORE_URL": f"s3://{bucket}/artifacts", "CHARTER_S3_ENDPOINT_URL": s3.endpoint,
            "AWS_ACCESS_KEY_ID": CREDENTIALS.access_key_id,
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS.secret_access_key, "AWS_DEFAULT_REGION": "us-east-1"}


# Every test on the session's server runs twice: with the artifact stores on local files (the
# embedded default) and on a real S3 server (SeaweedFS), as an organization that scales out runs.
@pytest.fixture(scope="session", params=["file", "s3"], ids=["artifacts-on-files", "artifacts-on-s3"])
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp(f"charter-e2e-{request.param}")
    data_dir, config_dir = root / "data", root / "config"
    config_dir.mkdir()
    admin_token = init_org(data_dir, config_dir)
    store = _s3_store(request) if request.param == "s3" else {}
    proc = ServerProcess(data_dir, config_dir, root / "server.log", admin_token, extra_env=store).start()
    try:
        yield proc
    finally:
        proc.stop()
        if request.session.testsfailed:
            print(f"\n--- charter server output ({proc.log_path}) ---\n{proc.log()[-20000:]}")


@pytest.fixture(scope="session")
def admin_token(server: ServerProcess) -> str:
    return server.admin_token


@pytest.fixture(scope="session")
def admin(server: ServerProcess, admin_token: str, acme_yaml: str) -> Iterator[Client]:
    client = Client(server.url, admin_token)
    client.apply(acme_yaml, filename="examples/acme/charter.yaml")
    yield client
    client.close()


@pytest.fixture(scope="session")
def persona_tokens(admin: Client) -> dict[str, str]:
    return {name: admin.create_token(name, description=f"e2e {name}").secret for name in PERSONAS}


@pytest.fixture(scope="session")
def personas(server: ServerProcess, persona_tokens: dict[str, str]) -> Iterator[dict[str, Client]]:
    clients = {name: Client(server.url, token) for name, token in persona_tokens.items()}
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture
def client_for(server: ServerProcess) -> Iterator[Callable[[str], Client]]:
    """A client for any bearer secret, closed after the test."""
    made: list[Client] = []

    def make(token: str) -> Client:
        client = Client(server.url, token)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def restore_org(admin: Client, acme_yaml: str) -> Iterator[None]:
    """Put the organization back as examples/acme/charter.yaml declares it, whatever the test did."""
    yield
    admin.apply(acme_yaml, filename="examples/acme/charter.yaml")


@pytest.fixture
def cli_config(tmp_path: Path) -> Path:
    config = tmp_path / "cli-config"
    config.mkdir()
    return config


@pytest.fixture
def cli(server: ServerProcess, cli_config: Path) -> Callable[..., CliResult]:
    """Run `charter ...` against the session server, with a config directory of the test's own."""

    def run(*args: str, token: str | None = None, **env: str) -> CliResult:
        extra = dict(env)
        if token is not None:
            extra.update(CHARTER_SERVER=server.url, CHARTER_TOKEN=token)
        return run_cli(list(args), charter_env(cli_config, **extra))

    return run


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback webhook receiver (the crash tests count the events delivered to it)."""
    made = Receiver()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def crash_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own (the session's is never killed), recovering fast from a kill."""
    with own_server(tmp_path, FAST_RECOVERY) as server:
        yield server
