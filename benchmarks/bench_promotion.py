"""Benchmark 4: promotion, from the lead's approval in dev to the central package being readable.

Figure 1, a 1 MB model: the time from sending ``POST …/packages/{v}/approve`` in ``ml-dev`` to the
moment ``GET /api/v1/accounts/ml-shared-services/registry/groups/promo-ml-dev/packages/{v}``
answers 200, polled every 2 ms by the ML engineer. In between, all of it real and in order: the
approval's event leaves the outbox, the dev bus's rule forwards it to the shared-services bus (its
bus policy admits the workloads OU), the shared-services rule hands it to the promotion handler
running as ``promotion-bot``, which copies the artifacts into the central store (each re-hashed on
arrival) and registers the central package with its model card. Every sample promotes a different
model (a random forest of about 1 MB saved with skops, trained with its own seed) so every copy
moves new bytes. Target: p50 <= 100 ms.

Figure 2, a 1 GiB model: the same path with a package of a small skops model and a 1 GiB weights
file. Its throughput (bytes / time from approval to visible) is set side by side, in the same run
and on the same filesystem, with the two things a copy that verifies must at least do: a plain
file copy (``shutil.copyfile``) and SHA-256 hashing of the file (``hashlib``, 1 MiB reads). Target:
>= 50 % of the slower of the two.

The server is the real one (``BackgroundServer``, the API and its dispatcher in this process) on
SQLite and local files, with the example organization applied.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import log, machine, percentile, summarize, table
from bench_registry import _platform

from charter.examples import acme_document

CENTRAL = "ml-shared-services"
GROUP = "promo"
TARGET_P50_MS = 100.0
TARGET_COPY_RATIO = 0.5
MiB = 1024 * 1024


def forest_models(count: int, target_bytes: int = MiB) -> list[bytes]:
    """``count`` fitted random forests saved with skops, each of about ``target_bytes``, each
    trained with a seed of its own (so no two share a digest)."""
    import numpy as np
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    def forest(seed: int, trees: int) -> bytes:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(600, 8))
        y = (x[:, 0] + rng.normal(scale=0.5, size=600) > 0).astype(int)
        return bytes(sio.dumps(RandomForestClassifier(n_estimators=trees, random_state=seed).fit(x, y)))

    trees = 40
    probe = forest(0, trees)
    while len(probe) < target_bytes * 0.9 and trees < 2000:  # grow the forest to the size asked
        trees = int(trees * target_bytes / len(probe)) + 1
        probe = forest(0, trees)
    return [probe] + [forest(seed, trees) for seed in range(1, count)]


class Promoter:
    def __init__(self, directory: Path) -> None:
        from charter.client.client import Client
        from charter.entrypoints.server import BackgroundServer

        self.platform, admin_bearer = _platform(directory)
        self.background = BackgroundServer(self.platform, "127.0.0.1", 0)
        self.url = self.background.start()
        with Client(self.url, admin_bearer) as admin:
            admin.apply(acme_document(), filename="examples/acme/charter.yaml")
            bearers = {n: admin.create_token(n, description="bench").secret for n in ("sam", "lena", "mei")}
        self.clients = {n: Client(self.url, b, timeout=600) for n, b in bearers.items()}
        self.clients["lena"].create_group("ml-dev", GROUP, description="promotion benchmark",
                                          readers=[CENTRAL])
        self.poller = httpx.Client(base_url=self.url, timeout=30,
                                   headers={"authorization": f"Bearer {bearers['mei']}"})

    def register(self, files: dict[str, bytes | Path]) -> int:
        from charter.client import models as m

        sam = self.clients["sam"]
        artifacts = []
        for path, content in files.items():
            blob = sam.upload_artifact("ml-dev", content, model_format="skops" if path.endswith(".skops") else None)
            artifacts.append(m.ArtifactIn(path=path, sha256=blob.sha256))
        package = sam.register_package("ml-dev", GROUP, m.PackageCreate(
            format="skops", artifacts=artifacts, metrics={"auc": 0.9}))
        return package.version

    def approve_and_wait(self, version: int, timeout: float = 600.0, poll_s: float = 0.002) -> float:
        """Seconds from sending the approval to the central package answering, polled every
        ``poll_s`` (each poll is a request the server handles, in the process doing the copy)."""
        path = f"/api/v1/accounts/{CENTRAL}/registry/groups/{GROUP}-ml-dev/packages/{version}"
        started = time.perf_counter()
        self.clients["lena"].approve("ml-dev", GROUP, version, "bench")
        while True:
            if self.poller.get(path).status_code == 200:
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"the central package {version} did not appear in {timeout}s")
            time.sleep(poll_s)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.poller.close()
        self.background.stop()
        self.platform.close()


def _big_file(path: Path, size: int) -> Path:
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * MiB))
            out.write(chunk)
            left -= len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return path


def _settle() -> None:
    """Let the kernel finish writing back what earlier steps wrote, so that one step's dirty pages
    do not slow the next measurement."""
    os.sync()
    time.sleep(1.0)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(MiB):
            yield chunk


def _throughput(size: int, seconds: float) -> float:
    return round(size / MiB / seconds, 1)


def _durable_copy(path: Path, directory: Path) -> float:
    """Seconds for ``shutil.copyfile`` and an fsync of the copy, after a pause."""
    _settle()
    target = directory / "around.bin"
    started = time.perf_counter()
    shutil.copyfile(path, target)
    with target.open("rb+") as copied:
        os.fsync(copied.fileno())
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def baselines(path: Path, directory: Path) -> dict[str, Any]:
    """The plain copy and the hashing of the same file, on the same filesystem, best of three."""
    copies, durable, hashes = [], [], []
    for i in range(3):
        target = directory / f"plain-copy-{i}.bin"
        _settle()
        started = time.perf_counter()
        shutil.copyfile(path, target)
        copies.append(time.perf_counter() - started)
        with target.open("rb+") as copied:  # what it takes for the copy to be on disk
            os.fsync(copied.fileno())
        durable.append(time.perf_counter() - started)
        target.unlink()
        started = time.perf_counter()
        digest = hashlib.sha256()
        for chunk in _chunks(path):
            digest.update(chunk)
        hashes.append(time.perf_counter() - started)
    size = path.stat().st_size
    return {"plain_copy_mib_per_s": _throughput(size, min(copies)),
            "durable_copy_mib_per_s": _throughput(size, min(durable)),
            "sha256_mib_per_s": _throughput(size, min(hashes))}


def run(samples: int = 30, big_bytes: int = 1024 * MiB) -> dict[str, Any]:
    started = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="charter-bench-promotion-", dir=os.environ.get("TMPDIR")))
    results: dict[str, Any] = {"targets": {"p50_ms_max": TARGET_P50_MS, "copy_ratio_min": TARGET_COPY_RATIO}}
    promoter: Promoter | None = None
    try:
        (directory / "charter").mkdir()
        promoter = Promoter(directory / "charter")
        log(f"promotion: training {samples + 2} random forests of about 1 MB ...")
        models = forest_models(samples + 2)
        for warm in models[:2]:  # first-use costs (directories, statement caches) stay out of the figure
            promoter.approve_and_wait(promoter.register({"model.skops": warm}))
        times = []
        for i, model in enumerate(models[2:]):
            times.append(promoter.approve_and_wait(promoter.register({"model.skops": model})) * 1e9)
            if i % 10 == 9:
                log(f"promotion: {i + 1}/{samples} promoted")
        small = summarize([int(t) for t in times], "ms")
        small["model_bytes_median"] = int(percentile(sorted(len(m) for m in models), 50))
        small["target_met"] = small["p50"] <= TARGET_P50_MS
        results["small"] = small

        log(f"promotion: writing and uploading a {big_bytes // MiB} MiB weights file ...")
        big = _big_file(directory / "weights.bin", big_bytes)
        version = promoter.register({"model.skops": models[0], "weights.bin": big})
        # This machine's disk takes a burst of writes fast and then slows down, so a copy's speed
        # depends on what was written just before it. The durable copy is timed right before and
        # right after the promotion, each after the same pause, so all three meet the same disk.
        before = _durable_copy(big, directory)
        _settle()
        # Polled every 50 ms: at 2 ms the polls alone keep the server's interpreter busy and slow
        # the copy they wait for; 50 ms costs at most 1.7 % of a 3 s figure.
        seconds = promoter.approve_and_wait(version, poll_s=0.05)
        after = _durable_copy(big, directory)
        large: dict[str, Any] = {"bytes": big_bytes, "seconds": round(seconds, 3),
                                 "promotion_mib_per_s": _throughput(big_bytes, seconds),
                                 "durable_copy_around_mib_per_s": [_throughput(big_bytes, before),
                                                                   _throughput(big_bytes, after)]}
        large.update(baselines(big, directory))
        floor = min(large["plain_copy_mib_per_s"], large["sha256_mib_per_s"])
        large["ratio_to_slower_baseline"] = round(large["promotion_mib_per_s"] / floor, 3)
        large["target_met"] = large["ratio_to_slower_baseline"] >= TARGET_COPY_RATIO
        durable_floor = min(*large["durable_copy_around_mib_per_s"], large["sha256_mib_per_s"])
        large["ratio_to_slower_durable_baseline"] = round(large["promotion_mib_per_s"] / durable_floor, 3)
        results["large"] = large
    finally:
        if promoter:
            promoter.close()
        shutil.rmtree(directory, ignore_errors=True)
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    return results


def report(results: dict[str, Any]) -> str:
    s, big = results["small"], results["large"]
    lines = [table("Approve in ml-dev -> central package readable, 1 MB skops model (ms)",
                   ["model", "n", "p50", "p90", "p99", "max"],
                   [[f"random forest, {s['model_bytes_median'] / MiB:.2f} MiB", s["n"], s["p50"], s["p90"],
                     s["p99"], s["max"]]]),
             f"target p50 <= {TARGET_P50_MS:.0f} ms: {'MET' if s['target_met'] else 'MISSED'}", "",
             table(f"Promotion of a {big['bytes'] // MiB} MiB package against plain copy and hashing (MiB/s)",
                   ["measure", "MiB/s"],
                   [["promotion, approve -> visible (copy fsynced before it registers)",
                     big["promotion_mib_per_s"]],
                    ["plain file copy (shutil.copyfile, into the page cache)", big["plain_copy_mib_per_s"]],
                    ["plain file copy, then fsync (the copy on disk), best of 3 at rest",
                     big["durable_copy_mib_per_s"]],
                    ["the same, just before the promotion", big["durable_copy_around_mib_per_s"][0]],
                    ["the same, just after the promotion", big["durable_copy_around_mib_per_s"][1]],
                    ["SHA-256 of the file (hashlib)", big["sha256_mib_per_s"]]]),
             f"ratio to the slower of plain copy and hashing: {big['ratio_to_slower_baseline']:.2f} "
             f"(target >= {TARGET_COPY_RATIO:.2f}): {'MET' if big['target_met'] else 'MISSED'}",
             f"ratio to the slowest of the durable copies around it and hashing: "
             f"{big['ratio_to_slower_durable_baseline']:.2f}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = run(samples=args.samples, big_bytes=args.big_mib * MiB)
    print(report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "promotion": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
