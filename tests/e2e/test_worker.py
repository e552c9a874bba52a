"""`charter worker`: a dispatcher process of its own that delivers events and stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from .support import charter_env, charter_executable, init_org


def test_the_worker_runs_until_sigterm_and_then_exits_cleanly(tmp_path: Path) -> None:
    data_dir, config_dir = tmp_path / "data", tmp_path / "config"
    config_dir.mkdir()
    init_org(data_dir, config_dir)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([charter_executable(), "worker", "--data-dir", str(data_dir)],
                                  env=charter_env(config_dir, data_dir), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "delivering events" not in log.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
