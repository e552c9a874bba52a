"""CSV tables as NumPy arrays: the numeric columns are the features, ``target`` the label."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)


def _numeric(values: list[str]) -> bool:
    try:
        for v in values:
            float(v)
    except ValueError:
        return False
    return True


def features(header: list[str], rows: list[list[str]], target: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The numeric feature columns (names and matrix) and the labels."""
    if target not in header:
        raise ValueError(f"the dataset has no column {target!r} (columns: {', '.join(header)})")
    t = header.index(target)
    columns = [i for i, name in enumerate(header) if i != t and _numeric([r[i] for r in rows])]
    x = np.array([[float(r[i]) for i in columns] for r in rows], dtype=float)
    y = np.array([r[t] for r in rows])
    return [header[i] for i in columns], x, y
