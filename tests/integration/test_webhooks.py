"""Webhook targets against a real HTTP server on 127.0.0.1: signed requests, retries, redirects
refused, and an SSRF guard that refuses internal addresses without opening a connection."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from charter.adapters.webhooks import HttpWebhookSender
from charter.domain.deliveries import DeliveryError, DeliveryStatus, RetryPolicy
from charter.domain.events import Event
from charter.domain.org import EventRule, EventTarget, TargetKind
from charter.services.dispatch import Dispatcher, DispatchSettings
from tests.unit.conftest import World
from tests.unit.fakes import FakeClock

EVENT = Event("charter.registry.model-package.state-changed", "ml-dev",
              "crn:charter:ml-dev:registry:model-package/churn/1", {"status": "Approved"})


class Receiver:
    """A local HTTP server answering each POST with the next programmed status."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"http://127.0.0.1:{receiver.port}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def _sender(tmp_path: Path, allow: list[str] | None = None, **kw: object) -> HttpWebhookSender:
    return HttpWebhookSender(tmp_path / "webhook.key", FakeClock(), timeout=5, allow=allow or [], **kw)  # type: ignore[arg-type]


def test_a_webhook_request_is_signed_with_the_key_file_created_at_first_use(tmp_path: Path, receiver: Receiver) -> None:
    sender = _sender(tmp_path, ["127.0.0.0/8"])
    sender.send(receiver.url, EVENT.to_cloudevent(), "d-1")
    key_file = tmp_path / "webhook.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    headers, body = receiver.requests[0]
    assert headers["content-type"] == "application/cloudevents+json"
    assert headers["x-charter-delivery"] == "d-1"
    expected = hmac.new(key_file.read_bytes().strip(), f"{headers['x-charter-timestamp']}.".encode() + body,
                        hashlib.sha256).hexdigest()
    assert headers["x-charter-signature"] == f"sha256={expected}"
    assert json.loads(body)["id"] == EVENT.id
    assert headers["host"] == f"127.0.0.1:{receiver.port}"


def test_a_webhook_answering_500_is_retried_and_then_succeeds(tmp_path: Path, receiver: Receiver) -> None:
    receiver.statuses = [500, 200]
    world = World()
    world.store.data.state.rules.clear()
    rule = EventRule("ml-dev", "hook", '{"source":["ml-dev"],"type":["' + EVENT.type + '"]}',
                     (EventTarget(TargetKind.WEBHOOK, receiver.url),))
    world.store.data.state.rules[rule.key] = rule
    dispatcher = Dispatcher(world.bus, DispatchSettings(retry=RetryPolicy(base_seconds=1, cap_seconds=1)),
                            webhooks=_sender(tmp_path, ["127.0.0.1/32"]))
    world.store.data.outbox.append(EVENT)
    dispatcher.run_until_idle()
    first, = world.store.data.deliveries.values()
    assert first.status is DeliveryStatus.PENDING and first.last_error == "webhook answered 500"
    world.clock.advance(seconds=2)
    dispatcher.run_until_idle()
    done, = world.store.data.deliveries.values()
    assert (done.status, done.attempts, len(receiver.requests)) == (DeliveryStatus.SUCCEEDED, 2, 2)
    assert receiver.requests[0][0]["x-charter-delivery"] == receiver.requests[1][0]["x-charter-delivery"]


def test_a_redirect_is_a_permanent_failure_and_is_not_followed(tmp_path: Path, receiver: Receiver) -> None:
    receiver.statuses = [302]
    with pytest.raises(DeliveryError) as failed:
        _sender(tmp_path, ["127.0.0.0/8"]).send(receiver.url, EVENT.to_cloudevent(), "d-1")
    assert failed.value.permanent and "redirect" in failed.value.reason
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (404, True), (408, False), (429, False), (503, False)])
def test_client_errors_are_permanent_except_timeouts_and_rate_limits(tmp_path: Path, receiver: Receiver,
                                                                    status: int, permanent: bool) -> None:
    receiver.statuses = [status]
    with pytest.raises(DeliveryError) as failed:
        _sender(tmp_path, ["127.0.0.0/8"]).send(receiver.url, EVENT.to_cloudevent(), "d-1")
    assert failed.value.permanent is permanent


class NoConnections(httpx.BaseTransport):
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raise AssertionError(f"connected to {request.url}")


@pytest.mark.parametrize("host", ["127.0.0.1", "169.254.169.254", "10.0.0.1", "[::1]", "[::ffff:127.0.0.1]",
                                  "localhost", "0.0.0.0", "224.0.0.1", "192.168.1.1", "[fe80::1]", "[fc00::1]"])
def test_the_ssrf_guard_refuses_internal_addresses_without_connecting(tmp_path: Path, receiver: Receiver,
                                                                     host: str) -> None:
    transport = NoConnections()
    sender = _sender(tmp_path, transport=transport)
    with pytest.raises(DeliveryError) as refused:
        sender.send(f"http://{host}:{receiver.port}/hook", EVENT.to_cloudevent(), "d-1")
    assert refused.value.refused and refused.value.permanent
    assert "non-public address" in refused.value.reason
    assert transport.requests == [] and receiver.requests == []


def test_the_guard_connects_to_the_address_it_checked_keeping_the_host_name(tmp_path: Path,
                                                                            receiver: Receiver) -> None:
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    sender = _sender(tmp_path, ["127.0.0.0/8"], resolve=resolve)
    sender.send(f"http://hooks.example.test:{receiver.port}/hook", EVENT.to_cloudevent(), "d-1")
    assert lookups == ["hooks.example.test"]  # one lookup: the connection goes to the checked IP
    assert receiver.requests[0][0]["host"] == f"hooks.example.test:{receiver.port}"


def test_a_name_resolving_to_any_internal_address_is_refused(tmp_path: Path) -> None:
    transport = NoConnections()
    sender = _sender(tmp_path, transport=transport, resolve=lambda host, port: ["93.184.216.34", "10.1.2.3"])
    with pytest.raises(DeliveryError) as refused:
        sender.send("https://rebind.example.test/hook", EVENT.to_cloudevent(), "d-1")
    assert refused.value.refused and "10.1.2.3" in refused.value.reason
    assert transport.requests == []


def test_a_refused_webhook_is_dead_lettered_and_audited(tmp_path: Path) -> None:
    world = World()
    world.store.data.state.rules.clear()
    rule = EventRule("ml-dev", "metadata", '{"source":["ml-dev"],"type":["' + EVENT.type + '"]}',
                     (EventTarget(TargetKind.WEBHOOK, "http://169.254.169.254/latest/meta-data"),))
    world.store.data.state.rules[rule.key] = rule
    transport = NoConnections()
    dispatcher = Dispatcher(world.bus, webhooks=_sender(tmp_path, transport=transport))
    world.store.data.outbox.append(EVENT)
    dispatcher.run_until_idle()
    dead, = world.store.data.deliveries.values()
    assert dead.status is DeliveryStatus.DEAD and dead.attempts == 1
    record = world.store.data.records[-1]
    assert (record.action, str(record.outcome), record.details["delivery"]) == ("events:Deliver", "denied", dead.id)
    assert transport.requests == []
