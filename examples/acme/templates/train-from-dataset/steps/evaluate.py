"""Evaluate on the held-out rows (accuracy, ROC AUC, F1) and the quality gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from steps.table import features, read


def load(model: Path) -> Any:
    # The model comes from this run's own train step: the types it holds are the ones to trust.
    return sio.load(model, trusted=sio.get_untrusted_types(file=model))


def evaluate(model: Path, test: Path, target: str) -> dict[str, Any]:
    estimator = load(model)
    header, rows = read(test)
    _, x, y = features(header, rows, target)
    predicted = estimator.predict(x)
    classes = list(estimator.classes_)
    scores = estimator.predict_proba(x)
    binary = len(classes) == 2
    metrics = {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted, average="binary", pos_label=classes[1]) if binary
                    else f1_score(y, predicted, average="macro")),
        "roc_auc": float(roc_auc_score(y == classes[1], scores[:, 1]) if binary
                         else roc_auc_score(y, scores, multi_class="ovr", labels=classes)),
        "test_rows": len(rows),
    }
    print("evaluation:", ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return {"evaluation": metrics}


def condition(evaluation: dict[str, Any], metric: str, threshold: str) -> tuple[bool, str]:
    if metric not in evaluation:
        raise ValueError(f"unknown metric {metric!r} (one of accuracy, roc_auc, f1)")
    value, bar = float(evaluation[metric]), float(threshold)
    verdict = "reaches" if value >= bar else "is below"
    return value >= bar, f"{metric} {value:.4f} {verdict} the threshold {bar}"
