"""Register: the model with its signature, a sample payload and its metrics. The runner registers
what this returns, as whoever started the run, with the run's lineage (PendingManualApproval)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from steps.table import features, read


def register(model: Path, test: Path, evaluation: dict[str, Any], target: str, group: str, algorithm: str,
             outputs: Path) -> dict[str, Any]:
    shutil.copyfile(model, outputs / "model")
    header, rows = read(test)
    names, x, _ = features(header, rows, target)
    signature = {"inputs": [{"name": n, "dtype": "float64"} for n in names],
                 "outputs": [{"name": target, "dtype": "int64"}]}
    print(f"registering {algorithm} into {group}")
    return {"registration": {
        "group": group, "format": "skops", "model": "model", "signature": signature,
        "sample_payload": {"instances": x[:3].tolist()},
        "metrics": {k: v for k, v in evaluation.items() if k != "test_rows"},
        "description": f"{algorithm} trained on the governed dataset, predicting {target}"}}
