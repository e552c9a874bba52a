"""The registry's reads answer with plain data in ``PackageOut``'s shape, serialized without the
model: that data must be exactly what the model would write, and the rows it comes from must read
back as they were written."""

from __future__ import annotations

from datetime import UTC, datetime

import pydantic_core
import pytest

from charter.adapters.db.engine import json_dumps, json_loads
from charter.client import models as m
from charter.domain.registry import (
    ApprovalStatus,
    Artifact,
    ColumnSpec,
    Lineage,
    ModelFormat,
    ModelPackage,
    Signature,
)
from charter.entrypoints.api import convert
from charter.services.ports import Page

T = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)
T_MICROS = datetime(2026, 1, 2, 8, 0, 0, 123456, tzinfo=UTC)


def _bare() -> ModelPackage:
    return ModelPackage("ml-dev", "churn", 1, ModelFormat.SKOPS, (Artifact("model.skops", 10, "a" * 64),),
                        Lineage("sam"), T)


def _full() -> ModelPackage:
    package = ModelPackage(
        "shared-services", "churn-ml-dev", 12, ModelFormat.ONNX,
        (Artifact("model.onnx", 2048, "b" * 64), Artifact("extra/vocab.json", 0, "c" * 64)),
        Lineage("sam", "run-7", "lena", ("crn:charter:ml-dev:data:dataset/churn/3",), "2.1.0",
                (("C", "0.5"), ("solver", "lbfgs"))),
        T_MICROS,
        signature=Signature((ColumnSpec("tenure", "float64"), ColumnSpec("plan", "string")),
                            (ColumnSpec("churn", "int64"),)),
        metrics=(("auc", 0.91), ("f1", 1.0), ("loss", 1e-07)),
        sample_payload={"columns": ["tenure", "plan"], "data": [[3.0, "basic"]]},
        description="Churn — gradient boosting, ünïcode",
        tags=(("team", "retention"), ("tier", "gold")),
        origin="crn:charter:ml-dev:registry:model-package/churn/4",
    )
    return (package.decide(ApprovalStatus.REJECTED, "lena", "needs more data", T)
            .decide(ApprovalStatus.APPROVED, "lena", "", T_MICROS))


@pytest.mark.parametrize("package", [_bare(), _full()], ids=["bare", "full"])
def test_a_package_document_serializes_exactly_as_the_wire_model(package: ModelPackage) -> None:
    document = convert.package_document(package)
    model = m.PackageOut.model_validate(document)
    assert pydantic_core.to_json(document) == model.model_dump_json().encode()
    assert convert.package(package) == model


def test_a_page_document_serializes_exactly_as_the_wire_page() -> None:
    page = Page([_bare(), _full()], "12")
    document = convert.page_document(page, convert.package_document)
    wire = convert.page(page, convert.package)
    assert pydantic_core.to_json(document) == wire.model_dump_json().encode()
    assert document["next_cursor"] == convert.encode_cursor("12")


@pytest.mark.parametrize("text, value", [
    ('{"a": [1, 2.5, null, true], "b": "x"}', {"a": [1, 2.5, None, True], "b": "x"}),
    ('"\\u00fc\\u2014"', "ü—"),
    # json.dumps writes a lone surrogate as an escape that pydantic-core refuses: read it anyway.
    ('"\\ud800"', "\ud800"),
])
def test_json_columns_read_back_what_was_written(text: str, value: object) -> None:
    assert json_loads(text) == value


@pytest.mark.parametrize("value", [
    {"a": [1, 2.5, None, True], "b": "x", "n": 2**70},
    [1e-07, 0.1, 1e16, 100.0],
    "ü—\x00\n",
    "\ud800",  # not UTF-8: written as an escape by the standard library, read back the same
])
def test_json_columns_write_what_reads_back(value: object) -> None:
    assert json_loads(json_dumps(value)) == value
