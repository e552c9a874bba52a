"""Train: the estimator the algorithm parameter names, features scaled, saved as skops."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from steps.table import features, read

ESTIMATORS: dict[str, Callable[[int], Any]] = {
    "LogisticRegression": lambda seed: LogisticRegression(max_iter=5000, random_state=seed),
    "RandomForestClassifier": lambda seed: RandomForestClassifier(n_estimators=100, random_state=seed),
    "GradientBoostingClassifier": lambda seed: GradientBoostingClassifier(random_state=seed),
    "HistGradientBoostingClassifier": lambda seed: HistGradientBoostingClassifier(random_state=seed),
    "DecisionTreeClassifier": lambda seed: DecisionTreeClassifier(random_state=seed),
    "ExtraTreesClassifier": lambda seed: ExtraTreesClassifier(n_estimators=100, random_state=seed),
    "SVC": lambda seed: SVC(probability=True, random_state=seed),
    "KNeighborsClassifier": lambda seed: KNeighborsClassifier(),
}


def train(train: Path, target: str, algorithm: str, seed: str, outputs: Path) -> None:
    if algorithm not in ESTIMATORS:
        raise ValueError(f"unknown algorithm {algorithm!r} (one of {', '.join(ESTIMATORS)})")
    header, rows = read(train)
    names, x, y = features(header, rows, target)
    model = Pipeline([("scale", StandardScaler()), ("model", ESTIMATORS[algorithm](int(seed)))])
    model.fit(x, y)
    sio.dump(model, outputs / "model")
    print(f"trained {algorithm} on {len(rows)} rows and {len(names)} numeric features")
