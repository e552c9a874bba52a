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


def training_data() -> tuple[list[list[float]], list[int]]:
    return [[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]], [0, 1, 0, 1]


@cache
def onnx_model() -> bytes:
    """The same classifier converted to ONNX (one float input of two columns)."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x, y = training_data()
    model = LogisticRegression().fit(np.array(x), np.array(y))
    onx = to_onnx(model, np.array(x, dtype=np.float32), options={"zipmap": False}, target_opset=15)
    return bytes(onx.SerializeToString())


@cache
def unloadable_onnx_model() -> bytes:
    """A well-formed ONNX file (it passes the registry's format check) that no runtime can load: its
    one node is an operator that does not exist."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph([helper.make_node("NoSuchOperator", ["x"], ["y"])], "broken", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    return bytes(model.SerializeToString())
