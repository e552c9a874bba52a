"""Running the real thing: `charter` as a subprocess, the server as a process of its own.

Every process gets an environment built here: no CHARTER_* variable of the caller leaks in, the CLI's
profiles live in a temporary config directory (never the user's ~/.config), checkpoints are signed
every few records and the request body limit is small enough to test cheaply.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

REPO = Path(__file__).resolve().parents[2]
ACME_YAML = REPO / "examples" / "acme" / "charter.yaml"
MAX_REQUEST_BYTES = 65536
CHECKPOINT_EVERY = 5
T = TypeVar("T")
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


# --- crash harness: SIGKILL at random points, restart, check nothing was lost or doubled ----------

# Short leases, polls and retries, so that work a killed server had claimed (outbox deliveries,
# deployment executions) is taken up again within a second of the restart, not after the defaults.
FAST_RECOVERY = {
    "CHARTER_DISPATCH_LEASE_SECONDS": "1",
    "CHARTER_DISPATCH_RETRY_BASE_SECONDS": "0.05",
    "CHARTER_DISPATCH_RETRY_CAP_SECONDS": "0.5",
    "CHARTER_DISPATCH_POLL_SECONDS": "0.05",
    "CHARTER_PIPELINE_POLL_SECONDS": "0.05",
    "CHARTER_DEPLOYMENT_LEASE_SECONDS": "1",
    "CHARTER_DEPLOYMENT_POLL_SECONDS": "0.05",
    "CHARTER_DEPLOYMENT_ROLLOUT_POLL_SECONDS": "0.05",
    "CHARTER_ENDPOINT_POLL_SECONDS": "0.2",
    # Webhook targets of the tests' rules are receivers on loopback.
    "CHARTER_WEBHOOK_ALLOW_PRIVATE_NETWORKS": '["127.0.0.1/32"]',
}


@contextmanager
def own_server(root: Path, extra_env: Mapping[str, str] | None = None) -> Iterator[ServerProcess]:
    """A `charter server` of the test's own (an org initialised in ``root``), stopped afterwards:
    for the tests that kill their server."""
    data_dir, config_dir = root / "data", root / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    token = init_org(data_dir, config_dir)
    server = ServerProcess(data_dir, config_dir, root / "server.log", token, extra_env=dict(extra_env or {})).start()
    try:
        yield server
    finally:
        server.stop()


def process_alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its parent, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def descendants(pid: int) -> dict[int, str]:
    """Every live process below ``pid`` (children, theirs, …), with its command line: what a
    server started (step runners, endpoint templates and workers), whatever session it is in."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found and process_alive(child):
                try:
                    found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                except OSError:
                    continue
                frontier.append(child)
    return found


@dataclass
class Crasher:
    """Kills a server with SIGKILL after random delays and starts it again on the same data; after
    each kill every process the killed server had started must be gone within a few seconds (no
    orphaned step or endpoint worker goes on running or serving). The seed and the delays are in
    ``str(crasher)``, for the failure messages."""

    server: ServerProcess
    seed: int = field(default_factory=lambda: int.from_bytes(os.urandom(4)))
    delays: list[float] = field(default_factory=list)
    reaped: list[int] = field(default_factory=list)
    """The pids of processes of killed servers that were seen to end."""
    restarts: list[float] = field(default_factory=list)
    """How long each start after a kill took, in seconds."""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def __str__(self) -> str:
        return f"seed {self.seed}, kills after {self.delays} s, restarts took {self.restarts} s"

    def kill_and_restart(self, low: float = 0.0, high: float = 0.4) -> None:
        delay = round(self.rng.uniform(low, high), 3)
        self.delays.append(delay)
        time.sleep(delay)
        assert self.server.process is not None
        left = descendants(self.server.process.pid)
        self.server.kill()
        deadline = time.monotonic() + 10
        while (alive := {p: c for p, c in left.items() if process_alive(p)}) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive, f"processes of the killed server still run: {alive} ({self})"
        self.reaped += list(left)
        started = time.monotonic()
        self.server.start()
        self.restarts.append(round(time.monotonic() - started, 2))

    def kill_until(self, done: Callable[[], bool], *, kills: int, low: float, high: float) -> int:
        """Kill and restart after random delays until ``done()`` or ``kills`` kills; how many there were."""
        count = 0
        while count < kills and not done():
            self.kill_and_restart(low, high)
            count += 1
        return count


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 60.0, every: float = 0.1) -> T:
    """``probe()`` once it returns something (not None or False); retried while what it asks for is
    not there yet (NotFound) or the server cannot be reached (restarting)."""
    from charter.errors import ConnectionFailed, NotFound

    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            found = probe()
            if found:
                return found
            last = found
        except (ConnectionFailed, NotFound, httpx.TransportError, OSError) as error:
            last = error
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not there after {timeout:g} s (last: {last!r})")
        time.sleep(every)


def rule_block(account: str, name: str, types: list[str], webhook: str) -> str:
    """An event rule of the organization file sending ``types`` on ``account``'s bus to ``webhook``."""
    return (f"\n  - account: {account}\n    name: {name}\n    pattern:\n      type: [{', '.join(types)}]\n"
            f"    targets:\n      - webhook: {webhook}\n")


def with_rules(document: str, *rules: str) -> str:
    """The organization file with ``rules`` (``rule_block``s) added to its rules."""
    at = document.index("\nroleBindings:")
    return document[:at].rstrip("\n") + "".join(rules) + document[at:]


def pipeline_archive(definition: str, steps: bytes) -> bytes:
    """A pipeline folder as `charter pipelines create` uploads it: pipeline.yaml and steps.py."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("pipeline.yaml", definition.encode()), ("steps.py", steps)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
