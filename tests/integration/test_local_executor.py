"""The local executor on real processes: outputs, crashes, missing outputs, timeouts, cancellation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.adapters.executors.local import LocalExecutor
from tests.pipelines_support import process_alive, step_job

CODE = {
    "warm.py": '''
import sys


def loaded(name):
    # 1 when the module was already imported before the step ran (preloaded by the fork server)
    was = name in sys.modules
    import xml.dom.minidom  # noqa: F401 - what makes this step one that may use the preload
    return {"metrics": {"loaded": int(was)}}
''',
    "steps.py": '''
import os
import subprocess
import sys
import time
from pathlib import Path


def write(n, outputs):
    print("writing", n)
    (outputs / "out").write_text(str(int(n) * 2))
    return {"metrics": {"n": int(n)}}


def crash():
    print("before the crash")
    raise RuntimeError("the step broke")


def lazy():
    print("nothing written")


def hang(outputs):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (outputs / "child").write_text(str(child.pid))
    print("started, now sleeping", flush=True)
    time.sleep(60)


def forks(outputs):
    if os.fork() == 0:
        return  # the forked copy goes back up through the step runner at once, and exits
    time.sleep(0.5)
    (outputs / "out").write_text("the step itself")


def check(value):
    return float(value) > 1, "value must exceed 1"


def loaded(name):
    # 1 when the module was already imported before the step ran (preloaded by the fork server)
    return {"metrics": {"loaded": int(name in sys.modules)}}
''',
}


@pytest.fixture(params=["fork-server", "spawn"])
def executor(request: pytest.FixtureRequest) -> Iterator[LocalExecutor]:
    made = LocalExecutor(fork_server=request.param == "fork-server")
    yield made
    made.close()


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    root = tmp_path / "code"
    root.mkdir()
    for name, text in CODE.items():
        (root / name).write_text(text)
    return root


def test_a_step_writes_its_outputs_and_metrics(executor: LocalExecutor, code_dir: Path) -> None:
    result = executor.run_step(step_job(code_dir, "steps:write", inputs={"n": "21"},
                                           outputs={"out": "artifact", "metrics": "metrics"}), threading.Event())
    assert result.ok, result.log_tail
    assert Path(result.outputs["out"]).read_text() == "42"
    assert result.metrics == {"metrics": {"n": 21}}
    assert "writing 21" in result.log_tail


def test_a_crashing_step_fails_with_its_traceback_tail(executor: LocalExecutor, code_dir: Path) -> None:
    result = executor.run_step(step_job(code_dir, "steps:crash"), threading.Event())
    assert not result.ok
    assert "exit code 1" in (result.error or "")
    assert "RuntimeError: the step broke" in result.log_tail
    assert "before the crash" in result.log_tail


def test_a_step_that_writes_no_declared_output_fails_naming_it(executor: LocalExecutor, code_dir: Path) -> None:
    result = executor.run_step(step_job(code_dir, "steps:lazy", outputs={"model": "artifact"}),
                                      threading.Event())
    assert not result.ok
    assert "the step wrote no output 'model'" in result.log_tail


def test_an_entry_point_outside_the_code_directory_is_refused(executor: LocalExecutor, code_dir: Path) -> None:
    result = executor.run_step(step_job(code_dir, "os:getcwd"), threading.Event())
    assert not result.ok
    assert "is not in the template's code" in result.log_tail


def test_a_step_past_its_timeout_is_killed_with_its_children_and_fails_with_its_log(executor: LocalExecutor, code_dir: Path) -> None:
    job = step_job(code_dir, "steps:hang", outputs={"child": "artifact"}, timeout=1.5)
    started = time.monotonic()
    result = executor.run_step(job, threading.Event())
    assert time.monotonic() - started < 10
    assert result.timed_out and not result.ok
    assert "timed out after 1.5 s" in (result.error or "")
    assert "started, now sleeping" in result.log_tail
    child = int((Path(job.output_dir) / "child").read_text())
    deadline = time.monotonic() + 5
    while process_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(child)


def test_a_cancelled_step_is_killed_at_once(executor: LocalExecutor, code_dir: Path) -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    result = executor.run_step(step_job(code_dir, "steps:hang", outputs={"child": "artifact"}), cancel)
    assert result.cancelled and not result.ok
    assert time.monotonic() - started < 10


def test_a_process_the_step_forks_does_not_end_the_step_when_it_exits(executor: LocalExecutor, code_dir: Path) -> None:
    result = executor.run_step(step_job(code_dir, "steps:forks", outputs={"out": "artifact"}), threading.Event())
    assert result.ok, result.log_tail
    assert Path(result.outputs["out"]).read_text() == "the step itself"


def test_a_condition_step_returns_its_verdict_and_reason(executor: LocalExecutor, code_dir: Path) -> None:
    result = executor.run_step(step_job(code_dir, "steps:check", inputs={"value": "0.5"}, kind="condition"),
                                      threading.Event())
    assert result.ok
    assert result.condition == (False, "value must exceed 1")


def test_modules_the_fork_server_preloads_are_loaded_before_a_step_that_imports_them_starts(code_dir: Path) -> None:
    warm = LocalExecutor(preload=("xml.dom.minidom", "no_such_module_at_all"))
    cold = LocalExecutor()
    try:
        job = step_job(code_dir, "warm:loaded", inputs={"name": "xml.dom.minidom"}, outputs={"metrics": "metrics"})
        assert warm.run_step(job, threading.Event()).metrics == {"metrics": {"loaded": 1}}
        assert cold.run_step(job, threading.Event()).metrics == {"metrics": {"loaded": 0}}
    finally:
        warm.close()
        cold.close()


def test_a_step_that_imports_only_the_standard_library_is_forked_from_the_bare_server(code_dir: Path) -> None:
    # steps.py imports os, subprocess, sys, time and pathlib: nothing the server preloads
    warm = LocalExecutor(preload=("xml.dom.minidom",))
    try:
        job = step_job(code_dir, "steps:loaded", inputs={"name": "xml.dom.minidom"}, outputs={"metrics": "metrics"})
        assert warm.run_step(job, threading.Event()).metrics == {"metrics": {"loaded": 0}}
        assert warm.preload_for(job) == ()
        assert warm.preload_for(step_job(code_dir, "warm:loaded")) == ("xml.dom.minidom",)
    finally:
        warm.close()


def test_a_step_requested_just_before_the_server_died_dies_with_the_fork_server(code_dir: Path,
                                                                                 tmp_path: Path) -> None:
    """The server killed with a request still in the pipe: the fork server forks the step, cannot
    say so (broken pipe) and must end that step as it ends the others, not leave it running."""
    import json
    import subprocess
    import sys

    from charter.adapters.executors.local import _environment

    job = step_job(code_dir, "steps:hang", outputs={"child": "artifact"})
    spec = Path(job.output_dir).parent / "spec.json"
    Path(job.output_dir).mkdir(parents=True)
    spec.write_text(json.dumps({"code_dir": job.code_dir, "entry_point": job.entry_point, "kind": job.kind,
                                "inputs": job.inputs, "outputs": job.outputs, "output_dir": job.output_dir}))
    server = subprocess.Popen([sys.executable, "-m", "charter.adapters.executors.step_runner", "--serve"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=_environment(), start_new_session=True)
    assert server.stdin is not None and server.stdout is not None
    server.stdout.close()  # the server's end is gone before the answer comes
    server.stdin.write(json.dumps(["1", str(spec), job.log_path, job.run_id, job.step]).encode() + b"\n")
    server.stdin.flush()
    server.wait(30)
    server.stdin.close()
    log = Path(job.log_path)
    deadline = time.monotonic() + 5  # had the step survived, it would have said so by then
    while time.monotonic() < deadline and "now sleeping" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    survivors = [p for p in _processes_in(spec.parent) if process_alive(p)]
    assert survivors == [] and "now sleeping" not in (log.read_text() if log.exists() else ""), \
        "the step forked for the dead server's request went on running"


def _processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is ``directory`` (a forked step and what it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cwd").resolve() == directory.resolve():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
