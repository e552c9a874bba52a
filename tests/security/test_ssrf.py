"""SSRF through webhook targets: a rule's webhook may name any URL, but the dispatcher connects only
to public addresses (unless an operator allows a network), resolves a name once and connects to the
address it checked, and never follows a redirect. A refused delivery is dead-lettered at once and
audited (``events:Deliver``, denied), and no connection is made.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from charter.domain import commands as c
from tests.conftest import EXAMPLE
from tests.integration.test_webhooks import NoConnections, Receiver

from .conftest import Org
from .support import DEV

INTERNAL_HOSTS = [
    "127.0.0.1", "127.1", "127.0.0.2", "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.0.0.1", "0",
    "0.0.0.0", "localhost", "LOCALHOST", "localhost.", "[::1]", "[0:0:0:0:0:0:0:1]", "[::]",
    "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::ffff:169.254.169.254]", "[::ffff:10.0.0.1]",
    "[2002:7f00:1::]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # 6to4 and Teredo around 127.0.0.1
    "169.254.169.254", "169.254.170.2", "[fe80::1]", "[fd00:ec2::254]", "10.0.0.1", "10.255.255.255",
    "172.16.0.1", "172.31.255.255", "192.168.0.1", "100.64.0.1", "198.18.0.1", "224.0.0.1",
    "255.255.255.255", "[fc00::1]", "[ff02::1]",
]
# Names a resolver answers with internal addresses (DNS rebinding, split horizon, wildcard DNS).
RESOLVING = {
    "metadata.attacker.test": ["169.254.169.254"],
    "rebind.attacker.test": ["93.184.216.34", "127.0.0.1"],
    "v6.attacker.test": ["::1"],
    "mapped.attacker.test": ["::ffff:10.0.0.1"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "internal.attacker.test": ["192.168.1.10"],
    "public.example.test": ["93.184.216.34"],
}


def _resolver(host: str, port: int) -> list[str]:
    try:  # numeric spellings (127.1, 2130706433, 0x7f000001 …) as the C library reads them, offline
        return [str(i[4][0]) for i in socket.getaddrinfo(host, port, flags=socket.AI_NUMERICHOST)]
    except socket.gaierror:
        pass
    if host.lower().rstrip(".") == "localhost":
        return ["127.0.0.1", "::1"]
    if host in RESOLVING:
        return RESOLVING[host]
    raise OSError(f"no such host {host} (the tests resolve no name through the network)")


@pytest.fixture
def no_connections(org: Org) -> Iterator[NoConnections]:
    sender = org.platform.dispatcher.webhooks
    assert sender is not None
    transport = NoConnections()
    saved = (sender.transport, sender.guard.resolve, sender.guard.allow)
    sender.transport, sender.guard.resolve, sender.guard.allow = transport, _resolver, []
    yield transport
    sender.transport, sender.guard.resolve, sender.guard.allow = saved


def _with_webhook(org: Org, url: str) -> None:
    rule = (f"  - account: {DEV}\n    name: hook\n    pattern:\n      source: [{DEV}]\n"
            f"      type: [charter.registry.model-package-group.created]\n"
            f"    targets:\n      - webhook: '{url}'\n")
    document = EXAMPLE.read_text().replace("\nroleBindings:", "\n" + rule + "\nroleBindings:", 1)
    org.bus.handle(c.ApplyOrg(document), org.admin)
    org.platform.dispatcher.run_until_idle()  # the apply's own events are routed before the trigger


def _trigger_and_dispatch(org: Org) -> list[tuple[str, str, str]]:
    org.bus.handle(c.CreateModelPackageGroup(DEV, f"g-{uuid.uuid4().hex[:8]}"), org.identity("lena"))
    org.platform.dispatcher.run_until_idle()
    with org.platform.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, status, last_error FROM event_deliveries WHERE rule = 'hook' "
                                 "ORDER BY created_at")).all()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def _dead_letter_records(org: Org, delivery: str) -> list[object]:
    page = org.bus.handle(c.ListAudit(c.AuditFilter(action="events:Deliver"), c.PageRequest(limit=100)), org.admin)
    while page.next_after:  # the newest records are on the last page
        page = org.bus.handle(c.ListAudit(c.AuditFilter(action="events:Deliver"),
                                          c.PageRequest(after=page.next_after, limit=100)), org.admin)
    return [r for r in page.items if r.details.get("delivery") == delivery]


# public.example.test resolves to a public address only: the parser-confusion tests use it as the
# one host a connection may go to.
@pytest.mark.parametrize("url", [f"http://{h}:8080/hook" for h in INTERNAL_HOSTS + sorted(RESOLVING)
                                 if h != "public.example.test"] + [
    "https://169.254.169.254/latest/meta-data/", "https://[::ffff:127.0.0.1]/", "https://metadata.attacker.test/",
])
def test_a_webhook_to_an_internal_address_is_refused_without_connecting_and_audited(
        org: Org, no_connections: NoConnections, url: str) -> None:
    _with_webhook(org, url)
    *_, (delivery, status, error) = _trigger_and_dispatch(org)
    assert status == "dead", error
    assert no_connections.requests == []
    record, = _dead_letter_records(org, delivery)
    assert str(record.outcome) == "denied"  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "ftp://10.0.0.1/x",
                                 "dict://127.0.0.1:11211/stats", "http:///hook", "http://user@/x"])
def test_a_webhook_that_is_not_an_http_url_with_a_host_never_applies_or_never_connects(
        org: Org, no_connections: NoConnections, url: str) -> None:
    try:
        _with_webhook(org, url)
    except Exception as refused:  # noqa: BLE001 - refused at apply time is the better outcome
        assert type(refused).__name__ == "ValidationError"
        return
    *_, (_delivery, status, _error) = _trigger_and_dispatch(org)
    assert status == "dead" and no_connections.requests == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_from_an_allowed_receiver_to_the_metadata_service_is_not_followed(
        org: Org, no_connections: NoConnections, status: int) -> None:
    receiver = Receiver()
    try:
        sender = org.platform.dispatcher.webhooks
        assert sender is not None
        sender.transport = None
        sender.guard.allow = [__import__("ipaddress").ip_network("127.0.0.1/32")]
        receiver.statuses = [status]
        _with_webhook(org, receiver.url)
        *_, (_delivery, state, error) = _trigger_and_dispatch(org)
        assert state == "dead" and "redirect" in error
        assert len(receiver.requests) == 1  # the one POST; the Location was never requested
    finally:
        receiver.server.shutdown()


@pytest.mark.parametrize("url", ["http://127.0.0.1:80@93.184.216.34/", "http://93.184.216.34#@127.0.0.1/",
                                 "http://127.0.0.1%2f@public.example.test/", "http://93.184.216.34\\@127.0.0.1/",
                                 "http://public.example.test?@127.0.0.1/"])
def test_a_url_that_confuses_parsers_connects_only_to_the_public_host_the_guard_checked(
        org: Org, no_connections: NoConnections, url: str) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    sender = org.platform.dispatcher.webhooks
    assert sender is not None
    sender.transport = httpx.MockTransport(answer)
    _with_webhook(org, url)
    _trigger_and_dispatch(org)
    # Either the URL is refused as unparseable, or the one connection goes to the public host.
    assert {r.url.host for r in seen} <= {"93.184.216.34"}
