"""Starting endpoint workers from a warm template process, and talking to them.

The template (``worker --template``) has the model runtimes imported already and forks one worker
per start; each worker runs in a session of its own, with its own log and status file, and answers
on a Unix socket. A worker handle keeps a small pool of connected sockets, so an invocation costs
one round trip on an open connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from charter.adapters.serving import wire

log = logging.getLogger("charter.endpoints")
_POOL_MAX = 64


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    # One thread per worker for the numeric libraries: replicas scale out, threads would contend.
    env.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    src = str(Path(__file__).resolve().parents[3])  # charter itself importable from a checkout
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


class ForkedWorker:
    def __init__(self, label: str, socket_path: str, status_path: Path, log_path: Path) -> None:
        self.label = label
        self.socket_path = socket_path
        self.status_path = status_path
        self.log_path = log_path
        self._pid: int | None = None
        self.exit_code: int | None = None
        self.started = threading.Event()
        self._pool: list[socket.socket] = []
        # Connections of the event loop that serves invocations (each bound to the loop it was made in).
        self._async_pool: list[tuple[asyncio.AbstractEventLoop, asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def pid(self) -> int | None:
        return self._pid

    def _status(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def alive(self) -> bool:
        return self._pid is not None and self.exit_code is None and not self._stopped

    def ready(self) -> bool:
        return self.alive() and bool(self._status().get("ready"))

    def failure(self) -> str | None:
        if self.exit_code is None and not (self.started.is_set() and self._pid is None):
            return None
        error = self._status().get("error")
        if error:
            return f"the model failed to load: {error}"
        if self._pid is None:
            return "the worker could not be started"
        code = self.exit_code
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        tail = _tail(self.log_path)
        return f"the worker (pid {self._pid}) {how}" + (f": {tail}" if tail else "")

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        if not self.alive():
            raise ConnectionError(f"worker {self.label} is not running")
        sock = self._take()
        try:
            sock.settimeout(timeout)
            wire.send(sock, request)
            answer = wire.receive(sock)
        except (OSError, ValueError) as error:
            sock.close()
            raise ConnectionError(f"worker {self.label}: {error}") from None
        self._give(sock)
        return answer

    async def acall(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """``call`` for a caller on an event loop: the same channel, without a thread."""
        if not self.alive():
            raise ConnectionError(f"worker {self.label} is not running")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await self._atake(loop)
                try:
                    answer = await wire.exchange(reader, writer, request)
                except BaseException:
                    writer.close()
                    raise
        except (OSError, ValueError, TimeoutError) as error:
            raise ConnectionError(f"worker {self.label}: {error or 'no answer in time'}") from None
        with self._lock:
            if len(self._async_pool) < _POOL_MAX and not self._stopped:
                self._async_pool.append((loop, reader, writer))
                return answer
        writer.close()
        return answer

    async def _atake(self, loop: asyncio.AbstractEventLoop) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        with self._lock:
            while self._async_pool:
                owner, reader, writer = self._async_pool.pop()
                if owner is loop and not writer.is_closing():
                    return reader, writer
                _close_on(owner, writer)  # closed, or another loop's: that loop closes it
        return await asyncio.open_unix_connection(self.socket_path)

    def _take(self) -> socket.socket:
        with self._lock:
            if self._pool:
                return self._pool.pop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.socket_path)
        except OSError as error:
            sock.close()
            raise ConnectionError(f"worker {self.label}: {error}") from None
        return sock

    def _give(self, sock: socket.socket) -> None:
        with self._lock:
            if len(self._pool) < _POOL_MAX and not self._stopped:
                self._pool.append(sock)
                return
        sock.close()

    def stop(self) -> None:
        self._stopped = True
        with self._lock:
            pool, self._pool = self._pool, []
            async_pool, self._async_pool = self._async_pool, []
        for sock in pool:
            sock.close()
        for owner, _, writer in async_pool:
            _close_on(owner, writer)
        if self._pid is not None and self.exit_code is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self._pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)


def _close_on(owner: asyncio.AbstractEventLoop, writer: asyncio.StreamWriter) -> None:
    """Close a pooled connection on the loop that owns it (a transport is not thread-safe); one of
    a loop that has closed went with it."""
    if not owner.is_closed():
        owner.call_soon_threadsafe(writer.close)


def _tail(path: Path, size: int = 600) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace").strip().splitlines()[-1] if f.tell() else ""
    except (OSError, IndexError):
        return ""


class ForkTemplateLauncher:
    def __init__(self, work_dir: Path, python: str | None = None) -> None:
        self.work_dir = work_dir
        self.python = python or sys.executable
        # Unix socket paths are limited to ~100 bytes: they live in a short directory of their own.
        self._sockets: str | None = None
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._stdin: IO[bytes] | None = None
        self._next = 0
        self._starting: dict[int, ForkedWorker] = {}
        self._by_pid: dict[int, ForkedWorker] = {}

    def _template(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            if self._sockets is None:
                self._sockets = tempfile.mkdtemp(prefix="charter-ep-")
            stderr = (self.work_dir / "template.log").open("ab")
            self._process = subprocess.Popen(
                [self.python, "-m", "charter.adapters.serving.worker", "--template"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=stderr, env=_environment(), start_new_session=True)
            stderr.close()
            self._stdin = self._process.stdin
            threading.Thread(target=self._read, args=(self._process,), daemon=True,
                             name="charter-endpoint-template").start()
        return self._process

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            with self._lock:
                if "started" in doc:
                    worker = self._starting.pop(int(doc["started"]), None)
                    if worker is not None:
                        worker._pid = int(doc["pid"])
                        self._by_pid[worker._pid] = worker
                        worker.started.set()
                elif "exited" in doc:
                    worker = self._by_pid.pop(int(doc["exited"]), None)
                    if worker is not None:
                        worker.exit_code = int(doc["code"])
        # The template ended: its workers are orphans we can no longer watch; end them.
        with self._lock:
            orphans = list(self._by_pid.values()) + list(self._starting.values())
            self._by_pid.clear()
            self._starting.clear()
        for worker in orphans:
            worker.stop()
            worker.exit_code = worker.exit_code if worker.exit_code is not None else -int(signal.SIGKILL)
            worker.started.set()

    def start(self, label: str, model_path: str, model_format: str) -> ForkedWorker:
        with self._lock:
            process = self._template()
            assert self._sockets is not None
            self._next += 1
            ident = self._next
            runs = self.work_dir / "workers"
            runs.mkdir(parents=True, exist_ok=True)
            worker = ForkedWorker(label, os.path.join(self._sockets, f"w{ident}.sock"),
                                  runs / f"{ident}.status", runs / f"{ident}.log")
            with contextlib.suppress(FileNotFoundError):
                worker.status_path.unlink()
            self._starting[ident] = worker
            job = {"id": ident, "socket": worker.socket_path, "model": model_path, "format": model_format,
                   "status": str(worker.status_path), "log": str(worker.log_path)}
            try:
                assert process.stdin is not None
                process.stdin.write((json.dumps(job) + "\n").encode())
                process.stdin.flush()
            except OSError:
                self._starting.pop(ident, None)
                worker.started.set()
                return worker
        worker.started.wait(10)
        return worker

    def warm(self) -> None:
        with self._lock:
            self._template()

    def close(self) -> None:
        with self._lock:
            workers = list(self._by_pid.values())
            process = self._process
            self._process = None
        for worker in workers:
            worker.stop()
        if process is not None:
            with contextlib.suppress(OSError):
                if process.stdin:
                    process.stdin.close()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._sockets is not None:
            shutil.rmtree(self._sockets, ignore_errors=True)
            self._sockets = None


def wait_ready(worker: ForkedWorker, timeout: float) -> bool:
    """For the tests: until the worker listens, or it failed, or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.ready():
            return True
        if worker.failure() is not None:
            return False
        time.sleep(0.01)
    return False
