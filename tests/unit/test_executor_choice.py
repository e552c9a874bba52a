"""The setting `pipeline_executor` chooses the executor; a name it does not know is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.adapters.executors import ray_task, step_runner
from charter.adapters.executors.local import LocalExecutor
from charter.adapters.executors.ray import RayExecutor, ray_address
from charter.bootstrap import pipeline_executor
from charter.config import Settings


def _settings(tmp_path: Path, executor: str) -> Settings:
    return Settings(data_dir=tmp_path, pipeline_executor=executor, pipeline_max_parallel=3)


def test_local_is_the_default_executor(tmp_path: Path) -> None:
    chosen = pipeline_executor(Settings(data_dir=tmp_path))
    assert isinstance(chosen, LocalExecutor)


def test_a_ray_client_address_chooses_the_ray_executor_without_connecting_yet(tmp_path: Path) -> None:
    chosen = pipeline_executor(_settings(tmp_path, "ray://127.0.0.1:1"))
    assert isinstance(chosen, RayExecutor)
    assert chosen.address == "ray://127.0.0.1:1" and chosen.max_parallel == 3


def test_ray_alone_joins_the_cluster_this_machine_is_part_of() -> None:
    assert ray_address("ray") == "auto"


@pytest.mark.parametrize("value", ["kubernetes", "ray://", "rays://h:1", "Local"])
def test_an_unknown_executor_is_refused_naming_the_known_ones(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError, match=r"unknown pipeline executor .*known: local, ray, ray://HOST:PORT"):
        pipeline_executor(_settings(tmp_path, value))


def test_the_ray_task_reads_the_result_file_the_step_runner_writes() -> None:
    assert ray_task.RESULT_FILE == step_runner.RESULT_FILE


class _FlakyRay:
    """A stand-in for the `ray` module whose `init` fails as Ray Client does when the server
    process it starts for a connection dies while starting."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionAbortedError) -> None:
        self.failures = failures
        self.error = error
        self.calls: list[str] = []

    def init(self, address: str, **_: object) -> None:
        self.calls.append(address)
        if len(self.calls) <= self.failures:
            raise self.error("Initialization failure from server")


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("charter.adapters.executors.ray._CONNECT_BACKOFF_SECONDS", 0.0)


@pytest.mark.usefixtures("no_backoff")
def test_a_connection_whose_server_failed_to_start_is_tried_again() -> None:
    ray = _FlakyRay(failures=2)
    RayExecutor("ray://127.0.0.1:1")._init(ray)
    assert ray.calls == ["ray://127.0.0.1:1"] * 3


@pytest.mark.usefixtures("no_backoff")
def test_a_connection_that_keeps_failing_gives_up_with_rays_error() -> None:
    ray = _FlakyRay(failures=5)
    with pytest.raises(ConnectionAbortedError, match="Initialization failure from server"):
        RayExecutor("ray://127.0.0.1:1")._init(ray)
    assert len(ray.calls) == 3


@pytest.mark.usefixtures("no_backoff")
def test_a_refused_address_is_not_tried_again() -> None:
    ray = _FlakyRay(failures=1, error=ConnectionRefusedError)
    with pytest.raises(ConnectionRefusedError):
        RayExecutor("ray://127.0.0.1:1")._init(ray)
    assert len(ray.calls) == 1
