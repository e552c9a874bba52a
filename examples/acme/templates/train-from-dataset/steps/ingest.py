"""Ingest: the governed dataset (a CSV the run read through its grant), split into train and test."""

from __future__ import annotations

from pathlib import Path

from sklearn.model_selection import train_test_split

from steps.table import read, write


def ingest(data: Path, target: str, test_size: str, seed: str, outputs: Path) -> None:
    header, rows = read(data)
    if target not in header:
        raise ValueError(f"the dataset has no column {target!r} (columns: {', '.join(header)})")
    labels = [r[header.index(target)] for r in rows]
    stratify = labels if len(set(labels)) < 20 else None
    train, test = train_test_split(rows, test_size=float(test_size), random_state=int(seed), stratify=stratify)
    write(outputs / "train", header, train)
    write(outputs / "test", header, test)
    print(f"ingested {len(rows)} rows, {len(header) - 1} columns besides {target}: "
          f"{len(train)} to train, {len(test)} to test")
