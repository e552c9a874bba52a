"""Register: the model with its signature, a sample payload, its metrics and a labelled held-out
sample (``holdout.json``: rows the model never trained on, with their labels, which a deployment's
integration tests score the test endpoint on). The runner registers what this returns, as whoever
started the run, with the run's lineage (PendingManualApproval)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from steps.table import features, read

HOLDOUT_ROWS = 500


def register(model: Path, test: Path, evaluation: dict[str, Any], target: str, group: str, algorithm: str,
             outputs: Path) -> dict[str, Any]:
    shutil.copyfile(model, outputs / "model")
    header, rows = read(test)
    names, x, y = features(header, rows, target)
    holdout = {"instances": x[:HOLDOUT_ROWS].tolist(), "labels": y[:HOLDOUT_ROWS].tolist()}
    (outputs / "holdout").write_text(json.dumps(holdout))
    signature = {"inputs": [{"name": n, "dtype": "float64"} for n in names],
                 "outputs": [{"name": target, "dtype": "int64"}]}
    print(f"registering {algorithm} into {group}")
    return {"registration": {
        "group": group, "format": "skops", "model": "model", "signature": signature,
        "extra_artifacts": {"holdout.json": "holdout"},
        "sample_payload": {"instances": x[:3].tolist()},
        "metrics": {k: v for k, v in evaluation.items() if k != "test_rows"},
        "description": f"{algorithm} trained on the governed dataset, predicting {target}"}}
