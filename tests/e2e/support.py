"""Running the real thing: `charter` as a subprocess, the server as a process of its own.

Every process gets an environment built here: no CHARTER_* variable of the caller leaks in, the CLI's
profiles live in a temporary config directory (never the user's ~/.config), checkpoints are signed
every few records and the request body limit is small enough to test cheaply.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
ACME_YAML = REPO / "examples" / "acme" / "charter.yaml"
MAX_REQUEST_BYTES = 65536
CHECKPOINT_EVERY = 5
PERSONAS = ("lena", "sam", "mei", "grace", "arthur", "priya", "diego", "promotion-bot")


def charter_executable() -> str:
    beside = Path(sys.executable).with_name("charter")
    if beside.exists():
        return str(beside)
    found = shutil.which("charter")
    if found is None:
        raise RuntimeError("the `charter` console script is not installed")
    return found


def charter_env(config_dir: Path, data_dir: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env.update({
        "CHARTER_CONFIG_DIR": str(config_dir),
        "CHARTER_AUDIT_CHECKPOINT_EVERY": str(CHECKPOINT_EVERY),
        "CHARTER_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
        # Rich wraps at 80 columns when it is not talking to a terminal; keep lines whole.
        "COLUMNS": "250",
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
        # The server's event dispatcher looks for work this often when idle.
        "CHARTER_DISPATCH_POLL_SECONDS": "0.1",
        # Many short-lived servers: those that serve start their worker template at their first endpoint.
        "CHARTER_ENDPOINT_WARM_AT_START": "false",
    })
    if data_dir is not None:
        env["CHARTER_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (f"charter {' '.join(self.args)} -> exit {self.returncode}\n"
                f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}")


def run_cli(args: list[str], env: Mapping[str, str], *, timeout: float = 180.0,
            cwd: Path | None = None) -> CliResult:
    proc = subprocess.run([charter_executable(), *args], env=dict(env), capture_output=True,
                          text=True, timeout=timeout, cwd=cwd or REPO)
    return CliResult(args, proc.returncode, proc.stdout, proc.stderr)


def init_org(data_dir: Path, config_dir: Path, org: str = "acme") -> str:
    """`charter --output json init`; returns the admin token printed once."""
    result = run_cli(["--output", "json", "init", "--org", org, "--data-dir", str(data_dir)],
                     charter_env(config_dir, data_dir))
    if result.returncode != 0:
        raise RuntimeError(f"charter init failed:\n{result}")
    data = result.json()
    assert isinstance(data, dict)
    return str(data["token"])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """`charter server` on a loopback port, its output kept in a log file."""

    data_dir: Path
    config_dir: Path
    log_path: Path
    admin_token: str = ""
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 120.0) -> ServerProcess:
        # Generous: on a machine shared with other test runs, importing the server alone has taken
        # 45 s; the wait ends as soon as /healthz answers.
        for _attempt in range(3):  # the port picked may be taken before the server binds it
            self.port = free_port()
            self.env = charter_env(self.config_dir, self.data_dir, **self.extra_env)
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [charter_executable(), "server", "--host", "127.0.0.1", "--port", str(self.port),
                     "--data-dir", str(self.data_dir)],
                    env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    cwd=self.data_dir)
            if self._wait_healthy(timeout):
                return self
            self.stop()
            if "address already in use" not in self.log().lower():
                break
        raise RuntimeError(f"charter server did not become healthy; its output:\n{self.log()}")

    def _wait_healthy(self, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as when a machine loses power or the OOM killer strikes."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)
