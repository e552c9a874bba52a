"""The channel to a worker: length-prefixed JSON over a Unix socket (never pickle: a worker's
answer is data, and a request carries nothing a worker could be made to execute)."""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_MESSAGE = 256 * 1024 * 1024


class ChannelClosed(ConnectionError):
    """The other end went away (a worker that died, mid-request or before)."""


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    sock.sendall(HEADER.pack(len(body)) + body)


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ChannelClosed("the worker closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket) -> dict[str, Any]:
    (size,) = HEADER.unpack(_exactly(sock, HEADER.size))
    if size > MAX_MESSAGE:
        raise ChannelClosed(f"a message of {size} bytes is larger than {MAX_MESSAGE}")
    message = json.loads(_exactly(sock, size))
    if not isinstance(message, dict):
        raise ChannelClosed("a message is a JSON object")
    return message
