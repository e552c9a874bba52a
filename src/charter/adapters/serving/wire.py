"""The channel to a worker: length-prefixed JSON over a Unix socket (never pickle: a worker's
answer is data, and a request carries nothing a worker could be made to execute)."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_MESSAGE = 256 * 1024 * 1024


class ChannelClosed(ConnectionError):
    """The other end went away (a worker that died, mid-request or before)."""


def frame(message: dict[str, Any]) -> bytes:
    """A message as it goes on the channel: its length, then its JSON."""
    body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    return HEADER.pack(len(body)) + body


def body_size(header: bytes) -> int:
    (size,) = HEADER.unpack(header)
    if size > MAX_MESSAGE:
        raise ChannelClosed(f"a message of {size} bytes is larger than {MAX_MESSAGE}")
    return int(size)


def decode(body: bytes) -> dict[str, Any]:
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ChannelClosed("a message is a JSON object")
    return message


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(frame(message))


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
    return decode(_exactly(sock, body_size(_exactly(sock, HEADER.size))))


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   message: dict[str, Any]) -> dict[str, Any]:
    """One request and its answer on an open asyncio connection."""
    writer.write(frame(message))
    try:
        await writer.drain()  # the worker reads as fast as we write; a big batch waits for room
        header = await reader.readexactly(HEADER.size)
        return decode(await reader.readexactly(body_size(header)))
    except asyncio.IncompleteReadError:
        raise ChannelClosed("the worker closed the connection") from None
