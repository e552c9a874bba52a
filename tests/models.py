"""Small real models for tests that register packages: trained here, saved in safe formats."""

from __future__ import annotations

from functools import cache


@cache
def skops_model() -> bytes:
    """A fitted scikit-learn classifier saved with skops (a few KB)."""
    import numpy as np
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    y = np.array([0, 1, 0, 1])
    return bytes(sio.dumps(LogisticRegression().fit(x, y)))
