"""Webhook targets: signed CloudEvents POSTed over HTTP(S), behind a guard against SSRF.

The guard resolves the host once, refuses every address that is not public (loopback, link-local,
private, unspecified, multicast, reserved, and the same inside IPv4-mapped, 6to4 and Teredo IPv6)
unless an allowed network admits it, and then connects to the very address it checked: the URL is
rewritten to the IP, while the Host header and TLS SNI (and so certificate checks) keep the name.
A second lookup by the HTTP client could otherwise answer differently (DNS rebinding).

Each request carries ``X-Charter-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">``
keyed with the contents of the webhook key file, ``X-Charter-Timestamp`` (Unix seconds) and
``X-Charter-Delivery`` (the delivery id, stable across retries, for receivers to deduplicate).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from charter.domain.deliveries import DeliveryError
from charter.services.ports import Clock

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
RETRYABLE_4XX = {408, 429}


def load_or_create_key(path: Path) -> bytes:
    """The HMAC key: the file's contents, created (0600, 256 random bits as hex) on first use."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    return path.read_bytes().strip()


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """The address and any IPv4 address it carries (IPv4-mapped, 6to4, Teredo)."""
    out: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if inner is not None:
                out.append(inner)
    return out


def _not_public(ip: IPAddress) -> bool:
    return (ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_unspecified
            or ip.is_multicast or ip.is_reserved or not ip.is_global)


class WebhookGuard:
    def __init__(self, allow: Sequence[str] = (), resolve: Resolver = system_resolver) -> None:
        self.allow: list[Network] = [ipaddress.ip_network(n, strict=False) for n in allow]
        self.resolve = resolve

    def admitted(self, ip: IPAddress) -> bool:
        if any(ip in net for net in self.allow if net.version == ip.version):
            return True
        return not any(_not_public(inner) for inner in _embedded(ip))

    def check(self, url: str) -> tuple[httpx.URL, str]:
        """The URL rewritten to the checked IP, and the host name it had."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as error:
            raise DeliveryError(f"invalid webhook URL: {error}", refused=True) from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise DeliveryError(f"a webhook is an http(s) URL with a host, not {url!r}", refused=True)
        host = parsed.host
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses: list[str] = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = self.resolve(host, port)
            except (OSError, UnicodeError) as error:
                raise DeliveryError(f"cannot resolve {host}: {error}") from None
        if not addresses:
            raise DeliveryError(f"{host} resolves to no address")
        ips = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
        refused = [str(ip) for ip in ips if not self.admitted(ip)]
        if refused:
            raise DeliveryError(f"refused webhook {host}: resolves to a non-public address "
                                f"({', '.join(refused)}); allow it with CHARTER_WEBHOOK_ALLOW_PRIVATE_NETWORKS",
                                refused=True)
        return parsed.copy_with(host=str(ips[0])), host


class HttpWebhookSender:
    def __init__(self, key_file: Path, clock: Clock, *, timeout: float = 10.0, allow: Sequence[str] = (),
                 resolve: Resolver = system_resolver, transport: httpx.BaseTransport | None = None) -> None:
        self.key_file = key_file
        self.clock = clock
        self.timeout = timeout
        self.guard = WebhookGuard(allow, resolve)
        self.transport = transport
        self._key: bytes | None = None

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = load_or_create_key(self.key_file)
        return self._key

    def send(self, url: str, event: dict[str, Any], delivery_id: str) -> None:
        pinned, host = self.guard.check(url)
        body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(self.clock.now().timestamp()))
        original = httpx.URL(url)
        headers = {
            "Host": original.netloc.decode("ascii"),
            "Content-Type": "application/cloudevents+json",
            "X-Charter-Signature": sign(self.key, timestamp, body),
            "X-Charter-Timestamp": timestamp,
            "X-Charter-Delivery": delivery_id,
            "User-Agent": "charter-webhooks",
        }
        extensions = {"sni_hostname": host} if pinned.scheme == "https" else {}
        try:
            # trust_env=False: a proxy from the environment would resolve the name again.
            with httpx.Client(transport=self.transport, follow_redirects=False, timeout=self.timeout,
                              trust_env=False) as client:
                request = client.build_request("POST", pinned, content=body, headers=headers,
                                               extensions=extensions)
                response = client.send(request)
        except httpx.TimeoutException as error:
            raise DeliveryError(f"webhook timed out: {type(error).__name__}") from None
        except httpx.HTTPError as error:
            raise DeliveryError(f"webhook connection failed: {type(error).__name__}: {error}") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        if 300 <= status < 400:
            raise DeliveryError(f"webhook answered a redirect ({status}); redirects are not followed",
                                permanent=True)
        if 400 <= status < 500 and status not in RETRYABLE_4XX:
            raise DeliveryError(f"webhook refused the event with {status}", permanent=True)
        raise DeliveryError(f"webhook answered {status}")
