"""Endpoints through a real `charter server`: deploy, invoke over HTTP and the CLI, a killed worker,
a blue/green update that never gets healthy, rollback, and /metrics."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable

import httpx
import pytest

from charter.client import models as m
from charter.client.client import Client
from charter.errors import ServiceUnavailable, Unauthenticated, ValidationError
from tests.endpoints_support import SAMPLE, SIGNATURE
from tests.models import onnx_model, skops_model, unloadable_onnx_model

from .support import CliResult, ServerProcess

CENTRAL, TEST = "ml-shared-services", "ml-test"
_names = itertools.count(1)


def _publish(personas: dict[str, Client], model: bytes, fmt: str) -> str:
    bot, mei = personas["promotion-bot"], personas["mei"]
    group = f"e2e-serve-{os.getpid()}-{next(_names)}"
    bot.create_group(CENTRAL, group, readers=["ou:deployments"])
    blob = bot.upload_artifact(CENTRAL, model, model_format=fmt)
    package = bot.register_package(CENTRAL, group, m.PackageCreate(
        format=fmt, artifacts=[m.ArtifactIn(path=f"model.{fmt}", sha256=blob.sha256)],
        signature=m.SignatureIn.model_validate(SIGNATURE), sample_payload=SAMPLE))
    mei.approve(CENTRAL, group, package.version, "ok for test")
    return package.crn


def _settled(client: Client, name: str, revision: int, timeout: float = 90) -> m.EndpointOut:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        e = client.endpoint(TEST, name)
        if next(r for r in e.revisions if r.revision == revision).status != "Updating":
            return e
        time.sleep(0.05)
    raise AssertionError(f"revision {revision} of {name} did not finish rolling out")


@pytest.fixture
def served(personas: dict[str, Client]) -> Callable[[str], tuple[str, str]]:
    def make(fmt: str = "skops") -> tuple[str, str]:
        package = _publish(personas, skops_model() if fmt == "skops" else onnx_model(), fmt)
        name = f"churn-{next(_names)}"
        personas["mei"].deploy_endpoint(TEST, name, [package], reason="e2e")
        e = _settled(personas["mei"], name, 1)
        assert e.status == "InService", e.revisions[-1].status_reason
        return name, package
    return make


def test_an_endpoint_is_deployed_and_invoked_over_http(personas: dict[str, Client],
                                                       served: Callable[..., tuple[str, str]]) -> None:
    name, package = served()
    answer = personas["mei"].invoke_endpoint(TEST, name, {"instances": [[0.0, 1.0], [1.0, 0.0]]})
    assert answer.predictions == [0, 1] and answer.package == package and answer.revision == 1


def test_a_signature_mismatch_is_a_400_naming_the_column(personas: dict[str, Client],
                                                         served: Callable[..., tuple[str, str]]) -> None:
    name, _ = served("onnx")
    with pytest.raises(ValidationError, match="missing column f1"):
        personas["mei"].invoke_endpoint(TEST, name, {"inputs": {"f0": [1.0]}})


def test_the_cli_shows_and_invokes_an_endpoint(cli: Callable[..., CliResult], persona_tokens: dict[str, str],
                                               served: Callable[..., tuple[str, str]]) -> None:
    name, package = served()
    shown = cli("endpoints", "show", name, "--account", TEST, token=persona_tokens["mei"])
    assert shown.returncode == 0, shown.stderr
    assert "InService" in shown.stdout and "Revisions" in shown.stdout
    invoked = cli("--output", "json", "endpoints", "invoke", name, "--account", TEST,
                  "--data", '{"instances": [[0.0, 1.0]]}', token=persona_tokens["mei"])
    assert invoked.returncode == 0, invoked.stderr
    assert invoked.json()["predictions"] == [0]  # type: ignore[index]


def test_a_killed_worker_is_restarted_and_meanwhile_requests_get_503(
        personas: dict[str, Client], served: Callable[..., tuple[str, str]]) -> None:
    name, _ = served()
    mei = personas["mei"]
    [worker] = [w for w in mei.endpoint(TEST, name).workers if w.serving]
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    unavailable = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            answer = mei.invoke_endpoint(TEST, name, SAMPLE)
        except ServiceUnavailable:
            unavailable += 1
            continue
        workers = [w for w in mei.endpoint(TEST, name).workers if w.serving]
        if workers and workers[0].pid != worker.pid:
            break
    else:
        raise AssertionError("the worker was not restarted")
    assert answer.predictions == [0, 1] and workers[0].restarts == 1 and unavailable >= 1


def test_a_blue_green_update_that_never_gets_healthy_keeps_the_old_revision_serving_then_rollback(
        personas: dict[str, Client], served: Callable[..., tuple[str, str]],
        cli: Callable[..., CliResult], persona_tokens: dict[str, str]) -> None:
    name, good = served()
    mei = personas["mei"]
    mei.deploy_endpoint(TEST, name, [_publish(personas, unloadable_onnx_model(), "onnx")], reason="v2")
    failed = _settled(mei, name, 2)
    assert failed.revisions[-1].status == "Failed" and "failed to load" in (failed.revisions[-1].status_reason or "")
    assert failed.serving_revision == 1 and mei.invoke_endpoint(TEST, name, SAMPLE).package == good
    mei.deploy_endpoint(TEST, name, [_publish(personas, onnx_model(), "onnx")], reason="v3")
    assert _settled(mei, name, 3).serving_revision == 3
    rolled = cli("endpoints", "rollback", name, "--account", TEST, "--reason", "v3 misbehaves",
                 token=persona_tokens["mei"])
    assert rolled.returncode == 0, rolled.stderr
    back = mei.endpoint(TEST, name)
    assert back.serving_revision == 4 and back.revisions[-1].rollback_of == 1
    assert mei.invoke_endpoint(TEST, name, SAMPLE).package == good


def test_metrics_count_requests_and_errors_per_endpoint(server: ServerProcess, personas: dict[str, Client],
                                                        persona_tokens: dict[str, str],
                                                        served: Callable[..., tuple[str, str]]) -> None:
    name, _ = served()
    mei = personas["mei"]
    mei.invoke_endpoint(TEST, name, SAMPLE)
    with pytest.raises(ValidationError):
        mei.invoke_endpoint(TEST, name, {"instances": []})
    text = mei.metrics()
    labels = f'account="{TEST}",endpoint="{name}"'
    assert any(line.startswith("charter_endpoint_requests_total{") and labels in line and line.endswith(" 2.0")
               for line in text.splitlines()), text
    assert any(line.startswith("charter_endpoint_errors_total{") and labels in line and line.endswith(" 1.0")
               for line in text.splitlines())
    assert "charter_endpoint_latency_seconds_bucket" in text
    assert httpx.get(f"{server.url}/metrics").status_code == 401




def _local_predictions(rows: list[list[float]]) -> list[int]:
    import numpy as np
    import skops.io as sio

    blob = skops_model()
    model = sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))
    return [int(p) for p in model.predict(np.asarray(rows))]


def test_concurrent_invocations_each_get_their_own_predictions_and_their_own_errors(
        server: ServerProcess, persona_tokens: dict[str, str], served: Callable[..., tuple[str, str]]) -> None:
    """The worker predicts the rows of requests that arrive together in one call: each caller
    still gets exactly its own rows' predictions, and a bad request fails alone."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    name, _ = served()
    url = f"{server.url}/api/v1/accounts/{TEST}/endpoints/{name}/invocations"
    headers = {"authorization": f"Bearer {persona_tokens['mei']}"}
    rng = random.Random(7)
    payloads: list[dict[str, object]] = [
        {"instances": [[rng.random(), rng.random()] for _ in range(rng.randint(1, 5))]} for _ in range(120)]
    payloads[17] = {"instances": [[0.5, "not a number"]]}
    payloads[60] = {"instances": [[0.5]]}

    def post(payload: dict[str, object]) -> httpx.Response:
        return httpx.post(url, json=payload, headers=headers, timeout=30)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(post, payloads))
    for i, (payload, answer) in enumerate(zip(payloads, answers, strict=True)):
        if i in (17, 60):
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["type"] == "ValidationError"
            continue
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == _local_predictions(payload["instances"])  # type: ignore[arg-type]


def test_invocation_errors_have_the_api_error_shape_and_a_request_id(
        server: ServerProcess, persona_tokens: dict[str, str], served: Callable[..., tuple[str, str]]) -> None:
    name, _ = served()
    url = f"{server.url}/api/v1/accounts/{TEST}/endpoints/{name}/invocations"
    cases = [({}, b'{"instances": [[0.0, 1.0]]}', 401, "Unauthenticated"),
             ({"authorization": f"Bearer {persona_tokens['sam']}"}, b'{"instances": [[0.0, 1.0]]}', 403,
              "PermissionDenied"),
             ({"authorization": f"Bearer {persona_tokens['mei']}"}, b"{not json", 400, "ValidationError"),
             ({"authorization": f"Bearer {persona_tokens['mei']}"}, b"[" * 5_000, 400, "ValidationError")]
    for headers, body, status, kind in cases:
        answer = httpx.post(url, content=body, headers={**headers, "content-type": "application/json"}, timeout=30)
        assert (answer.status_code, answer.json()["error"]["type"]) == (status, kind), answer.text
        assert len(answer.headers["x-request-id"]) == 32
    missing = httpx.post(f"{server.url}/api/v1/accounts/{TEST}/endpoints/no-such-endpoint/invocations",
                         json={"instances": [[0.0, 1.0]]},
                         headers={"authorization": f"Bearer {persona_tokens['mei']}"}, timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"


def test_a_revoked_token_is_refused_at_its_next_invocation(admin: Client, server: ServerProcess,
                                                           served: Callable[..., tuple[str, str]]) -> None:
    """Allowed decisions are reused for a moment, but a revocation on the server ends them at once."""
    name, _ = served()
    issued = admin.create_token("mei", description="revoked mid-traffic")
    with Client(server.url, issued.secret) as mei:
        for _ in range(5):
            assert mei.invoke_endpoint(TEST, name, {"instances": [[0.0, 1.0]]}).predictions == [0]
        admin.revoke_token(issued.token.id)
        with pytest.raises(Unauthenticated, match="revoked"):
            mei.invoke_endpoint(TEST, name, {"instances": [[0.0, 1.0]]})
