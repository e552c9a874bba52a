"""Example datasets for demos and tests, made from data that ships inside a package (no download).

scikit-learn is only in the ``test`` and ``dev`` extras, so it is imported when a dataset is
asked for, with an error that says what to install.
"""

from __future__ import annotations

import csv
import importlib
from pathlib import Path
from typing import Any

TARGET = "y"


def _sklearn_datasets() -> Any:
    try:
        return importlib.import_module("sklearn.datasets")
    except ImportError:
        raise RuntimeError("the example datasets need scikit-learn: pip install 'charter[dev]' "
                           "(or pip install scikit-learn)") from None


def write_example_csv(path: Path) -> Path:
    """Write scikit-learn's bundled breast-cancer data set (569 rows, 30 float features and the
    0/1 target column ``y``) as a CSV file with a header line; returns ``path``."""
    bunch = _sklearn_datasets().load_breast_cancer()
    names = [str(n).replace(" ", "_") for n in bunch.feature_names]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow([*names, TARGET])
        for row, target in zip(bunch.data, bunch.target, strict=True):
            writer.writerow([*(repr(float(v)) for v in row), int(target)])
    return path
