"""The channel to an endpoint worker on a real Unix socket: pooled connections are reused by the
loop that made them, and one another loop finds in the pool is closed on its own loop."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.adapters.serving import wire
from charter.adapters.serving.launcher import ForkedWorker


class EchoWorker:
    """A worker's side of the channel: answers each request with its ``n``, and counts the
    connections it saw opened and closed."""

    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen()
        self.opened = self.closed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.opened += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                while True:
                    request = wire.receive(conn)
                    wire.send(conn, {"ok": True, "n": request["n"]})
            except (wire.ChannelClosed, OSError):
                self.closed += 1


class Loop:
    """An event loop running in a thread of its own, as uvicorn's does."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: object) -> object:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def channel() -> Iterator[tuple[ForkedWorker, EchoWorker]]:
    directory = Path(tempfile.mkdtemp(prefix="charter-chan-", dir="/tmp"))  # a short path for AF_UNIX
    path = str(directory / "w.sock")
    echo = EchoWorker(path)
    worker = ForkedWorker("t/1/a/0", path, directory / "status.json", directory / "log")
    worker._pid = os.getpid()  # a live process: the handle talks to whatever answers on the socket
    yield worker, echo
    echo.listener.close()


def _eventually(check: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_a_loop_reuses_its_pooled_connection(channel: tuple[ForkedWorker, EchoWorker]) -> None:
    worker, echo = channel
    loop = Loop()
    try:
        answers = [loop.run(worker.acall({"n": n}, 5)) for n in range(3)]
        assert [a["n"] for a in answers] == [0, 1, 2]  # type: ignore[index]
        assert echo.opened == 1
    finally:
        loop.close()


def test_a_connection_of_another_loop_found_in_the_pool_is_closed_on_its_loop(
        channel: tuple[ForkedWorker, EchoWorker]) -> None:
    worker, echo = channel
    first, second = Loop(), Loop()
    try:
        first.run(worker.acall({"n": 1}, 5))
        answer = second.run(worker.acall({"n": 2}, 5))
        assert answer["n"] == 2  # type: ignore[index]
        assert echo.opened == 2
        assert _eventually(lambda: echo.closed == 1), "the first loop's connection was left open"
    finally:
        first.close()
        second.close()
