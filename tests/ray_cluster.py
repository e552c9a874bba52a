"""A local Ray cluster for the tests: `ray start --head --block` on loopback ports only, 2 CPUs and
a small object store, in a process group of its own that the tests stop (nothing else's Ray is
touched: no `ray stop`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

OBJECT_STORE_BYTES = 100 * 1024 * 1024


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class RayCluster:
    process: subprocess.Popen[bytes]
    temp_dir: Path
    log_path: Path
    client_port: int

    @property
    def address(self) -> str:
        """The Ray Client address, as CHARTER_PIPELINE_EXECUTOR takes it."""
        return f"ray://127.0.0.1:{self.client_port}"

    @classmethod
    def start(cls, timeout: float = 90.0, attempts: int = 2) -> RayCluster:
        """Start a cluster; once more when the first does not come up (on a loaded machine
        `ray start` itself may give up waiting for its own servers)."""
        for attempt in range(1, attempts + 1):
            try:
                return cls._start(timeout)
            except RuntimeError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _start(cls, timeout: float) -> RayCluster:
        # Short: Ray's socket paths must fit in 107 bytes.
        temp_dir = Path(tempfile.mkdtemp(prefix="cray-", dir="/tmp"))
        log_path = temp_dir / "ray-start.log"
        client_port = _free_port()
        ray = str(Path(sys.executable).with_name("ray"))
        env = dict(os.environ)
        # Ray picks the machine's outward address for a node unless told it is a single-machine
        # one; this keeps every Ray server of the tests on loopback.
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        # Each Ray Client connection gets a server process of its own, which must answer within
        # 30 s by default; on a machine loaded by other test runs its start-up alone took longer.
        env["RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S"] = "180"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                 f"--port={_free_port()}", f"--ray-client-server-port={client_port}",
                 "--num-cpus=2", f"--object-store-memory={OBJECT_STORE_BYTES}",
                 "--include-dashboard=false", "--dashboard-host=127.0.0.1", f"--dashboard-port={_free_port()}",
                 f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
                 f"--metrics-export-port={_free_port()}", f"--runtime-env-agent-port={_free_port()}",
                 "--disable-usage-stats", f"--temp-dir={temp_dir}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True)
        cluster = cls(process, temp_dir, log_path, client_port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _listening(client_port) and "Ray runtime started" in log_path.read_text(errors="replace"):
                return cluster
            time.sleep(0.2)
        output = log_path.read_text(errors="replace")
        cluster.stop()
        raise RuntimeError(f"ray start did not come up:\n{output[-4000:]}")

    def stop(self) -> None:
        """Stop every process of this cluster (its process group), then remove its files."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        if not os.environ.get("CHARTER_TEST_KEEP_RAY"):  # its logs, to see why a test failed
            shutil.rmtree(self.temp_dir, ignore_errors=True)
