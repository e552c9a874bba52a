"""The registry's hot routes are answered by lanes in front of the router (entrypoints/api/
fastlane.py): a lane answers exactly what the route would, and whatever it does not take goes on
to the router with its body, which refuses it as it refuses any bad request."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from charter.bootstrap import Platform, bootstrap
from charter.config import Settings
from charter.domain import commands as c
from charter.entrypoints.api.app import create_app
from charter.entrypoints.server import BackgroundServer
from charter.services.handlers import registry as registry_handlers
from tests.integration.conftest import Org, auth
from tests.models import skops_model
from tests.seaweed import CREDENTIALS, SeaweedFS

PACKAGES = "/api/v1/accounts/ml-dev/registry/groups/churn/packages"
ROUTER = {"via": "router"}  # a query key no lane knows: the request goes to the router


@pytest.fixture
def body(org: Org) -> dict[str, Any]:
    lena, sam = org.identity("lena"), org.identity("sam")
    org.bus.handle(c.CreateModelPackageGroup("ml-dev", "churn", "churn model"), lena)
    blob = org.bus.handle(c.UploadArtifact("ml-dev", [skops_model()], 1 << 22), sam)
    return {"format": "skops", "artifacts": [{"path": "model.skops", "sha256": blob.sha256}],
            "metrics": {"auc": 0.91}, "tags": {"team": "retention"}, "lineage": {"run": "run-7"}}


def test_the_lanes_answer_what_the_router_answers(api: TestClient, org: Org, body: dict[str, Any]) -> None:
    sam, lena = auth(org.bearer("sam")), auth(org.bearer("lena"))
    registered = api.post(PACKAGES, json=body, headers=sam)
    assert registered.status_code == 201, registered.text
    version = registered.json()["version"]
    approved = api.post(f"{PACKAGES}/{version}/approve", json={"comment": "fine"}, headers=lena)
    assert approved.status_code == 200 and approved.json()["status"] == "Approved"
    api.post(PACKAGES, json=body, headers=sam)

    for path, params in ((f"{PACKAGES}/{version}", {}), (f"{PACKAGES}/latest", {"status": "Approved"}),
                         (PACKAGES, {"limit": "1"}), (PACKAGES, {"status": "PendingManualApproval"})):
        by_lane = api.get(path, params=params, headers=lena)
        by_router = api.get(path, params={**params, **ROUTER}, headers=lena)
        assert by_lane.status_code == by_router.status_code == 200, (path, by_lane.text, by_router.text)
        assert by_lane.json() == by_router.json(), path
    page = api.get(PACKAGES, params={"limit": "1"}, headers=lena).json()
    second = api.get(PACKAGES, params={"limit": "1", "cursor": page["next_cursor"]}, headers=lena).json()
    assert [p["version"] for p in page["items"] + second["items"]] == [version, version + 1]


@pytest.mark.parametrize("params, field", [
    ({"limit": "0"}, "limit"),
    ({"limit": "\u0663"}, "limit"),  # an Arabic-Indic three: a digit to str.isdigit, not to the route
    ({"cursor": "x" * 513}, "cursor"),
])
def test_a_query_the_route_refuses_is_refused_as_the_route_refuses_it(
        api: TestClient, org: Org, body: dict[str, Any], params: dict[str, str], field: str) -> None:
    response = api.get(PACKAGES, params=params, headers=auth(org.bearer("lena")))
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["message"]


def test_a_body_the_route_refuses_reaches_the_router_whole(api: TestClient, org: Org,
                                                          body: dict[str, Any]) -> None:
    response = api.post(PACKAGES, json={**body, "artifacts": "model.skops"}, headers=auth(org.bearer("sam")))
    assert response.status_code == 400
    problems = response.json()["error"]["details"]["problems"]
    assert [p["field"] for p in problems] == ["artifacts"]  # the router read the body, not an empty one


def test_a_version_out_of_range_is_refused_by_the_router(api: TestClient, org: Org, body: dict[str, Any]) -> None:
    response = api.post(f"{PACKAGES}/{2**31}/approve", json={"comment": ""}, headers=auth(org.bearer("lena")))
    assert response.status_code == 400
    assert response.json()["error"]["details"]["problems"][0]["field"] == "version"


def test_an_error_in_a_lane_has_the_error_shape_and_the_request_id(api: TestClient, org: Org,
                                                                   body: dict[str, Any]) -> None:
    response = api.post(f"{PACKAGES}/99/approve", json={"comment": ""}, headers=auth(org.bearer("lena")))
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "NotFound"
    assert len(response.headers["x-request-id"]) == 32


# --- where a lane runs its message: on the event loop when alone, else on a worker thread ---------


LOOP, WORKER = "event loop", "worker thread"


def _where(platform: Platform, monkeypatch: pytest.MonkeyPatch, *messages: type) -> list[str]:
    """Where each of ``messages`` is handled, in order: on the thread running the event loop, or
    on a thread of its own."""
    seen: list[str] = []
    for message in messages:
        handler = platform.bus.handlers[message]

        def recorded(cmd: Any, ctx: Any, handler: Any = handler) -> Any:
            try:
                asyncio.get_running_loop()
                seen.append(LOOP)
            except RuntimeError:
                seen.append(WORKER)
            return handler(cmd, ctx)
        monkeypatch.setitem(platform.bus.handlers, message, recorded)
    return seen


def test_a_short_request_alone_runs_on_the_event_loop_and_one_that_reads_a_model_file_does_not(
        api: TestClient, org: Org, platform: Platform, body: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_handlers, "INSPECTIONS", registry_handlers._Inspections())  # none made yet
    seen = _where(platform, monkeypatch, c.RegisterModelPackage, c.DecideModelPackage)
    sam, lena = auth(org.bearer("sam")), auth(org.bearer("lena"))
    first = api.post(PACKAGES, json=body, headers=sam)  # its model file is read and inspected
    again = api.post(PACKAGES, json=body, headers=sam)  # inspected already: short
    approved = api.post(f"{PACKAGES}/{first.json()['version']}/approve", json={"comment": "ok"}, headers=lena)
    assert (first.status_code, again.status_code, approved.status_code) == (201, 201, 200)
    assert seen == [WORKER, LOOP, LOOP]


def test_with_the_setting_off_every_lane_runs_on_a_worker_thread(
        org: Org, platform: Platform, body: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "settings", platform.settings.model_copy(update={"api_inline_alone": False}))
    seen = _where(platform, monkeypatch, c.RegisterModelPackage, c.DecideModelPackage)
    with TestClient(create_app(platform)) as api:
        version = api.post(PACKAGES, json=body, headers=auth(org.bearer("sam"))).json()["version"]
        api.post(PACKAGES, json=body, headers=auth(org.bearer("sam")))
        api.post(f"{PACKAGES}/{version}/approve", json={"comment": "ok"}, headers=auth(org.bearer("lena")))
    assert seen == [WORKER, WORKER, WORKER]


def test_a_request_while_another_is_being_served_runs_on_a_worker_thread(
        org: Org, platform: Platform, body: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The event loop is never given a message while it serves someone else: an upload still
    sending its body is in flight, so an approval made meanwhile goes to a worker thread (and
    answers before the upload ends)."""
    server = BackgroundServer(platform, "127.0.0.1", 0)
    url = server.start()
    try:
        version = httpx.post(url + PACKAGES, json=body, headers=auth(org.bearer("sam"))).json()["version"]
        seen = _where(platform, monkeypatch, c.DecideModelPackage)
        release, uploaded = threading.Event(), []

        def slow_body() -> Iterator[bytes]:
            yield b"x" * 1024
            release.wait(30)
            yield b"y" * 1024

        def upload() -> None:
            uploaded.append(httpx.post(f"{url}/api/v1/accounts/ml-dev/artifacts", content=slow_body(),
                                       headers=auth(org.bearer("sam")), timeout=60).status_code)
        uploader = threading.Thread(target=upload)
        uploader.start()
        time.sleep(0.3)  # the upload's first chunk is in: the request is being served
        approved = httpx.post(f"{url}{PACKAGES}/{version}/approve", json={"comment": "ok"},
                              headers=auth(org.bearer("lena")), timeout=30)
        assert approved.status_code == 200 and not uploaded, (approved.text, uploaded)
        release.set()
        uploader.join(30)
        assert uploaded == [201]
        assert seen == [WORKER]
        alone = httpx.post(f"{url}{PACKAGES}/{version}/reject", json={"comment": "on second thought"},
                           headers=auth(org.bearer("lena")), timeout=30)
        assert alone.status_code == 200 and seen == [WORKER, LOOP]
    finally:
        server.stop()


def test_a_register_on_an_object_store_runs_on_a_worker_thread(
        settings: Settings, seaweedfs: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> None:
    """On S3 a registration asks the store over the network for each artifact: never on the loop,
    even with its model file inspected at upload; an approval there still is."""
    for name, value in (("AWS_ACCESS_KEY_ID", CREDENTIALS.access_key_id),
                        ("AWS_SECRET_ACCESS_KEY", CREDENTIALS.secret_access_key), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    bucket = f"charter-lane-{uuid.uuid4().hex[:8]}"
    seaweedfs.client.create_bucket(Bucket=bucket)
    on_s3 = settings.model_copy(update={"artifact_store_url": f"s3://{bucket}/artifacts",
                                        "s3_endpoint_url": seaweedfs.endpoint})
    platform = bootstrap(on_s3)
    try:
        org = Org(platform)
        org.bus.handle(c.CreateModelPackageGroup("ml-dev", "churn", "churn model"), org.identity("lena"))
        blob = org.bus.handle(c.UploadArtifact("ml-dev", [skops_model()], 1 << 22, "skops"), org.identity("sam"))
        seen = _where(platform, monkeypatch, c.RegisterModelPackage, c.DecideModelPackage)
        body = {"format": "skops", "artifacts": [{"path": "model.skops", "sha256": blob.sha256}]}
        with TestClient(create_app(platform)) as api:
            registered = api.post(PACKAGES, json=body, headers=auth(org.bearer("sam")))
            assert registered.status_code == 201, registered.text
            approved = api.post(f"{PACKAGES}/{registered.json()['version']}/approve", json={"comment": "ok"},
                                headers=auth(org.bearer("lena")))
            assert approved.status_code == 200, approved.text
        assert seen == [WORKER, LOOP]
    finally:
        platform.close()
