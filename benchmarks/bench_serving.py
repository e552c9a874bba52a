"""Serving: the same breast-cancer classifier behind a Charter endpoint and behind
``mlflow models serve --env-manager local`` (MLflow in its own venv), side by side.

- Charter: a real server (SQLite, the acme organization), the model registered as a skops package
  in the central registry, approved, and deployed to an endpoint in ml-test (one worker process);
  every request authenticated (bearer token) and authorized (Cedar) like any API call:
    POST /api/v1/accounts/ml-test/endpoints/breast-cancer/invocations  {"instances": [[30 floats]]}
- MLflow: the same model (trained the same way, in MLflow's venv) saved with mlflow.sklearn and
  served by ``mlflow models serve`` (no authentication):
    POST /invocations  {"instances": [[30 floats]]}

Closed-loop load (benchmarks/_loadgen.py, a process of its own) at concurrency 1, 10 and 64, after
one uncounted second of invocations on each side: throughput and p50/p99 latency, and Charter's
ratios to MLflow.

    python benchmarks/bench_serving.py [--seconds 5] [--mlflow PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import free_loopback_port, loadgen, log, table  # noqa: E402
from bench_registry import _platform  # noqa: E402
from bench_write import _mlflow_version, find_mlflow  # noqa: E402

CENTRAL, TEST, ENDPOINT, GROUP = "ml-shared-services", "ml-test", "breast-cancer", "breast-cancer"
CONCURRENCY = (1, 10, 64)
# Trained identically on both sides: scikit-learn's bundled breast-cancer data, standardised, a
# logistic regression (deterministic with lbfgs).
TRAIN = """
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
x, y = load_breast_cancer(return_X_y=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
"""


def _train() -> tuple[Any, list[list[float]]]:
    scope: dict[str, Any] = {}
    exec(TRAIN, scope)  # noqa: S102 - our own constant, run the same way in MLflow's venv
    return scope["model"], scope["x"][:1].tolist()


class CharterServing:
    def __init__(self, directory: Path) -> None:
        import skops.io as sio

        from charter.client import models as m
        from charter.client.client import Client
        from charter.entrypoints.server import BackgroundServer
        from charter.examples import acme_document

        self.platform, admin_bearer = _platform(directory, background_work=False)
        self.background = BackgroundServer(self.platform, "127.0.0.1", 0)
        self.url = self.background.start()
        model, self.row = _train()
        with Client(self.url, admin_bearer) as admin:
            admin.apply(acme_document(), filename="examples/acme/charter.yaml")
            tokens = {n: admin.create_token(n, description="bench").secret for n in ("promotion-bot", "mei")}
        self.bearer = tokens["mei"]
        columns = [{"name": f"f{i}", "dtype": "double"} for i in range(len(self.row[0]))]
        with Client(self.url, tokens["promotion-bot"]) as bot, Client(self.url, self.bearer) as mei:
            bot.create_group(CENTRAL, GROUP, readers=["ou:deployments"])
            blob = bot.upload_artifact(CENTRAL, bytes(sio.dumps(model)), model_format="skops")
            package = bot.register_package(CENTRAL, GROUP, m.PackageCreate(
                format="skops", artifacts=[m.ArtifactIn(path="model.skops", sha256=blob.sha256)],
                signature=m.SignatureIn.model_validate({"inputs": columns}), sample_payload={"instances": self.row}))
            mei.approve(CENTRAL, GROUP, package.version, "bench")
            started = time.monotonic()
            mei.deploy_endpoint(TEST, ENDPOINT, [package.crn])
            while (e := mei.endpoint(TEST, ENDPOINT)).revisions[-1].status == "Updating":
                time.sleep(0.02)
            if e.status != "InService":
                raise RuntimeError(f"the endpoint did not get healthy: {e.revisions[-1].status_reason}")
            self.deploy_s = time.monotonic() - started
        self.path = f"/api/v1/accounts/{TEST}/endpoints/{ENDPOINT}/invocations"

    def spec(self, concurrency: int, seconds: float) -> dict[str, Any]:
        return {"url": self.url, "method": "POST", "path": self.path, "json": {"instances": self.row},
                "headers": {"authorization": f"Bearer {self.bearer}"}, "concurrency": concurrency,
                "duration": seconds, "max_requests": 1_000_000, "expect": [200], "warmup_path": "/healthz"}

    def close(self) -> None:
        self.background.stop()
        self.platform.close()


class MLflowServing:
    def __init__(self, executable: Path, directory: Path, startup_timeout: float = 180.0) -> None:
        python = executable.with_name("python")
        model_dir = directory / "model"
        save = TRAIN + f"""
import mlflow.sklearn
from mlflow.models import infer_signature
mlflow.sklearn.save_model(model, {str(model_dir)!r}, signature=infer_signature(x, model.predict(x)))
"""
        subprocess.run([str(python), "-c", save], check=True, capture_output=True, timeout=300)
        _, self.row = _train()
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "mlflow-serve.log"
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [str(executable), "models", "serve", "-m", str(model_dir), "--env-manager", "local",
                 "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # It runs `uvicorn` by name: its venv's bin must come first on PATH.
                env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                     "PATH": os.pathsep.join([str(executable.parent), os.environ.get("PATH", "")])})
        started = time.monotonic()
        while time.monotonic() - started < startup_timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("mlflow models serve did not start")
        self.startup_s = time.monotonic() - started

    def spec(self, concurrency: int, seconds: float) -> dict[str, Any]:
        return {"url": self.url, "method": "POST", "path": "/invocations", "json": {"instances": self.row},
                "concurrency": concurrency, "duration": seconds, "max_requests": 1_000_000, "expect": [200],
                "warmup_path": "/ping"}

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _figures(result: dict[str, Any]) -> dict[str, Any]:
    if "error" in result:
        return {"error": result["error"]}
    latency = result.get("latency") or {}
    return {"requests_per_s": result.get("requests_per_s"), "p50_ms": latency.get("p50"),
            "p99_ms": latency.get("p99"), "completed": result.get("completed"), "errors": result.get("errors")}


def run(seconds: float = 5.0, clients: tuple[int, ...] = CONCURRENCY, mlflow: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"concurrency": list(clients), "seconds": seconds, "charter": {}, "mlflow": {}}
    with tempfile.TemporaryDirectory(prefix="charter-bench-serving-") as tmp:
        directory = Path(tmp)
        (directory / "charter").mkdir()
        charter = CharterServing(directory / "charter")
        out["charter_deploy_s"] = round(charter.deploy_s, 3)
        peer: MLflowServing | None = None
        executable = find_mlflow(mlflow)
        if executable is None:
            out["mlflow"] = {"skipped": "mlflow not found: create its venv (docs/benchmarks.md)"}
        else:
            (directory / "mlflow").mkdir()
            try:
                peer = MLflowServing(executable, directory / "mlflow")
                out["mlflow_version"] = _mlflow_version(executable)
            except (RuntimeError, subprocess.SubprocessError) as error:
                out["mlflow"] = {"skipped": f"mlflow models serve did not start: {error}"}
        try:
            # One second of invocations first on each side, not counted: both servers' first
            # requests (imports on first use, caches, the workers' first predictions) are not served.
            loadgen(charter.spec(1, 1.0))
            if peer is not None:
                loadgen(peer.spec(1, 1.0))
            for n in clients:
                log(f"serving: charter, {n} clients")
                out["charter"][str(n)] = _figures(loadgen(charter.spec(n, seconds)))
                if peer is not None:
                    log(f"serving: mlflow, {n} clients")
                    out["mlflow"][str(n)] = _figures(loadgen(peer.spec(n, seconds)))
        finally:
            charter.close()
            if peer is not None:
                peer.close()
    if peer is not None:
        out["ratios"] = {}
        for n in clients:
            c, p = out["charter"][str(n)], out["mlflow"][str(n)]
            if "error" in c or "error" in p:
                continue
            out["ratios"][str(n)] = {
                "throughput_x": round(c["requests_per_s"] / p["requests_per_s"], 2) if p["requests_per_s"] else None,
                "p99_fraction": round(c["p99_ms"] / p["p99_ms"], 3) if p["p99_ms"] else None,
                "p50_fraction": round(c["p50_ms"] / p["p50_ms"], 3) if p["p50_ms"] else None}
    return out


def report(results: dict[str, Any]) -> str:
    rows = []
    for n in results["concurrency"]:
        c = results["charter"].get(str(n), {})
        p = results["mlflow"].get(str(n), {}) if "skipped" not in results["mlflow"] else {}
        r = results.get("ratios", {}).get(str(n), {})
        rows.append([n, c.get("requests_per_s"), c.get("p50_ms"), c.get("p99_ms"), p.get("requests_per_s"),
                     p.get("p50_ms"), p.get("p99_ms"), r.get("throughput_x"), r.get("p99_fraction")])
    text = table("Serving: Charter endpoint vs mlflow models serve (breast-cancer logistic regression)",
                 ["clients", "charter req/s", "p50 ms", "p99 ms", "mlflow req/s", "p50 ms", "p99 ms",
                  "throughput x", "p99 fraction"], rows)
    if "skipped" in results["mlflow"]:
        text += f"\nMLflow skipped: {results['mlflow']['skipped']}"
    return text + f"\nCharter deploy (approved package -> endpoint serving): {results.get('charter_deploy_s')} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--mlflow", help="path of the mlflow executable (its own venv)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    results = run(args.seconds, mlflow=args.mlflow)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
