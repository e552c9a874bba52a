"""Model files are what they claim to be, and never pickles: checked on real files.

The skops and ONNX files come from their own libraries (a tiny scikit-learn model saved with
``skops.io.dumps`` and converted with ``skl2onnx.to_onnx``); the pickles come from ``pickle``,
``joblib`` and ``cloudpickle``; the hostile archives are real skops files rewritten with zipfile.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickle
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnx
import pytest
import skops.io as sio
from hypothesis import given, settings
from hypothesis import strategies as st
from joblib.numpy_pickle_compat import write_zfile
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from charter.domain.model_formats import DEFAULT_LIMITS, Limits, ModelInspection, inspect_model
from charter.domain.registry import ModelFormat
from charter.errors import TooLarge, ValidationError

X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [2.0, 1.0], [0.5, 2.0]])
Y = np.array([0, 1, 1, 0, 1, 0])
DECLARED = [ModelFormat.SKOPS, ModelFormat.ONNX]


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y)


@pytest.fixture(scope="module")
def skops_bytes(pipeline: Pipeline) -> bytes:
    return sio.dumps(pipeline)


@pytest.fixture(scope="module")
def onnx_bytes(pipeline: Pipeline) -> bytes:
    return to_onnx(pipeline, X.astype(np.float32)).SerializeToString()


def refusal(declared: ModelFormat | str, data: bytes,
            limits: Limits = DEFAULT_LIMITS) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        inspect_model(declared, data, limits)
    return caught.value


def members(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def rezip(archive: bytes, *, drop: tuple[str, ...] = (), add: dict[str, bytes] | None = None,
          infos: tuple[zipfile.ZipInfo, ...] = (), compression: int = zipfile.ZIP_STORED) -> bytes:
    """The archive's members less ``drop``, with ``add`` (replacing) and raw ``infos`` appended."""
    content = {n: d for n, d in members(archive).items() if n not in drop} | (add or {})
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w", compression) as z:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate names some tests want
        for name, data in content.items():
            z.writestr(name, data)
        for info in infos:
            z.writestr(info, b"\x93NUMPY")
    return out.getvalue()


def npy(array: np.ndarray[Any, Any], allow_pickle: bool = False) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=allow_pickle)
    return out.getvalue()


def patch_entry(archive: bytes, index: int, local: tuple[int, str, int] | None,
                central: tuple[int, str, int]) -> bytes:
    """Overwrite a field of the ``index``-th member's local header and central directory entry."""
    data = bytearray(archive)
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        info = z.infolist()[index]
        start_dir = z.start_dir
    if local:
        offset, fmt, value = local
        struct.pack_into(fmt, data, info.header_offset + offset, value)
    entry = start_dir
    for _ in range(index):
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, entry + 28)
        entry += 46 + name_length + extra_length + comment_length
    offset, fmt, value = central
    struct.pack_into(fmt, data, entry + offset, value)
    return bytes(data)


# --- skops ----------------------------------------------------------------------------------------

def test_a_skops_file_is_accepted_with_the_classes_it_names(skops_bytes: bytes) -> None:
    inspection = inspect_model(ModelFormat.SKOPS, skops_bytes)
    assert inspection.format is ModelFormat.SKOPS
    assert inspection.estimator == "sklearn.pipeline.Pipeline"
    assert {"sklearn.preprocessing._data.StandardScaler",
            "sklearn.linear_model._logistic.LogisticRegression"} <= set(inspection.classes)


def test_a_skops_file_reports_its_protocol_and_skops_version(skops_bytes: bytes) -> None:
    schema = json.loads(members(skops_bytes)["schema.json"])
    inspection = inspect_model("skops", skops_bytes)
    assert (inspection.skops_protocol, inspection.skops_version) == (
        schema["protocol"], schema["_skops_version"])


def test_a_skops_file_is_read_from_a_stream(skops_bytes: bytes, tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    path.write_bytes(skops_bytes)
    with path.open("rb") as stream:
        assert inspect_model("skops", stream) == inspect_model("skops", skops_bytes)


def test_a_deflated_skops_file_is_accepted(pipeline: Pipeline) -> None:
    data = sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED)
    assert inspect_model("skops", data).estimator == "sklearn.pipeline.Pipeline"


def test_a_skops_file_holding_a_sparse_matrix_is_accepted() -> None:
    model = LogisticRegression().fit(X, Y).sparsify()
    inspection = inspect_model("skops", sio.dumps(model))
    assert any(name.startswith("scipy.sparse") for name in inspection.classes)


def test_a_sparse_matrix_larger_than_its_limit_is_refused() -> None:
    data = sio.dumps(LogisticRegression().fit(X, Y).sparsify())
    assert "sparse matrix" in refusal("skops", data, Limits(max_npz_bytes=100)).message


def test_a_skops_file_holding_bytes_is_accepted() -> None:
    model = StandardScaler().fit(X)
    model.note_ = b"trained on six rows"
    assert inspect_model("skops", sio.dumps(model)).estimator == (
        "sklearn.preprocessing._data.StandardScaler")


def test_a_zip_without_schema_json_is_refused_as_not_skops(skops_bytes: bytes) -> None:
    error = refusal("skops", rezip(skops_bytes, drop=("schema.json",)))
    assert "schema.json" in error.message and error.details["found"] == "zip"


@pytest.mark.parametrize("schema", [
    b"not json", b"[]", b"{}", json.dumps({"protocol": True, "__class__": "A", "__module__": "m",
                                           "__loader__": "ObjectNode"}).encode(),
    json.dumps({"protocol": 2, "__module__": "m", "__loader__": "ObjectNode"}).encode(),
    b"[" * 100_000 + b"]" * 100_000,
], ids=["text", "list", "empty", "boolean-protocol", "no-class", "deeply-nested"])
def test_a_schema_json_that_is_not_a_skops_schema_is_refused(skops_bytes: bytes,
                                                              schema: bytes) -> None:
    error = refusal("skops", rezip(skops_bytes, add={"schema.json": schema}))
    assert "schema.json" in error.message


def test_a_schema_referring_to_a_missing_array_is_refused(skops_bytes: bytes) -> None:
    array = next(name for name in members(skops_bytes) if name.endswith(".npy"))
    assert array in refusal("skops", rezip(skops_bytes, drop=(array,))).message


def test_a_member_skops_never_writes_is_refused(skops_bytes: bytes) -> None:
    error = refusal("skops", rezip(skops_bytes, add={"run.sh": b"#!/bin/sh\n"}))
    assert error.details["member"] == "run.sh"


@pytest.mark.parametrize("name, content", [
    ("model.pkl", pickle.dumps({"coef": [1.0]})),
    ("1234.npy", pickle.dumps({"coef": [1.0]})),
    ("1234.bin", pickle.dumps({"coef": [1.0]}, protocol=0)),
    ("1234.bin", gzip.compress(pickle.dumps({"coef": [1.0]}))),
    ("1234.npy", npy(np.array([{"a": 1}, None], dtype=object), allow_pickle=True)),
    ("1234.npy", npy(np.zeros(2, dtype=[("x", "<f8"), ("o", "O")]), allow_pickle=True)),
], ids=["named-pkl", "pickle-as-npy", "protocol-0-as-bin", "gzipped-pickle", "object-array",
        "object-field"])
def test_a_skops_archive_with_a_pickled_member_is_refused_naming_pickle(
        skops_bytes: bytes, name: str, content: bytes) -> None:
    error = refusal("skops", rezip(skops_bytes, add={name: content}))
    assert error.details["found"] == "pickle" and "pickle" in error.message


def test_an_array_whose_length_disagrees_with_its_header_is_refused(skops_bytes: bytes) -> None:
    array = next(name for name in members(skops_bytes) if name.endswith(".npy"))
    cut = members(skops_bytes)[array][:-8]
    assert "header" in refusal("skops", rezip(skops_bytes, add={array: cut})).message


@pytest.mark.parametrize("name", ["../evil.npy", "/etc/evil.npy", "a\\..\\evil.npy", "a/../evil.npy",
                                  "C:/evil.npy", "./evil.npy", "a//evil.npy", "evil\x01.npy"])
def test_a_member_with_an_unsafe_path_is_refused(skops_bytes: bytes, name: str) -> None:
    info = zipfile.ZipInfo(name)
    assert "unsafe member" in refusal("skops", rezip(skops_bytes, infos=(info,))).message


def test_a_symbolic_link_member_is_refused(skops_bytes: bytes) -> None:
    info = zipfile.ZipInfo("1.npy")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    assert "symbolic link" in refusal("skops", rezip(skops_bytes, infos=(info,))).message


def test_a_member_that_is_not_a_regular_file_is_refused(skops_bytes: bytes) -> None:
    info = zipfile.ZipInfo("arrays")
    info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
    assert "not a regular file" in refusal("skops", rezip(skops_bytes, infos=(info,))).message


def test_an_encrypted_member_is_refused(skops_bytes: bytes) -> None:
    encrypted = patch_entry(skops_bytes, 0, (6, "<H", 1), (8, "<H", 1))
    assert "encrypted" in refusal("skops", encrypted).message


def test_a_member_present_twice_is_refused(skops_bytes: bytes) -> None:
    twice = rezip(skops_bytes, infos=(zipfile.ZipInfo("schema.json"),))
    assert "twice" in refusal("skops", twice).message


def test_a_highly_compressed_member_is_refused_as_a_zip_bomb(skops_bytes: bytes) -> None:
    bomb = rezip(skops_bytes, add={"1.bin": bytes(16 * 1024 * 1024)},
                 compression=zipfile.ZIP_DEFLATED)
    error = refusal("skops", bomb)
    assert "zip bomb" in error.message and error.details["member"] == "1.bin"


def test_an_archive_decompressing_past_the_limit_is_refused(skops_bytes: bytes) -> None:
    big = rezip(skops_bytes, add={"1.bin": bytes(300_000)})
    error = refusal("skops", big, Limits(max_uncompressed_bytes=200_000))
    assert "more than 200000 bytes" in error.message


def test_an_archive_with_too_many_members_is_refused(skops_bytes: bytes) -> None:
    many = rezip(skops_bytes, add={f"{i}.bin": b"x" for i in range(20)})
    assert "members" in refusal("skops", many, Limits(max_members=20)).message


def test_members_sharing_their_bytes_are_refused_as_a_zip_bomb(skops_bytes: bytes) -> None:
    overlapping = patch_entry(skops_bytes, 1, None, (42, "<I", 0))
    assert "overlaps" in refusal("skops", overlapping).message


def test_a_member_larger_than_its_entry_declares_is_not_read_past_it(skops_bytes: bytes) -> None:
    bomb = rezip(skops_bytes, add={"1.bin": bytes(5_000_000)}, compression=zipfile.ZIP_DEFLATED)
    index = [i.filename for i in zipfile.ZipFile(io.BytesIO(bomb)).infolist()].index("1.bin")
    lying = patch_entry(bomb, index, (22, "<I", 1000), (24, "<I", 1000))
    assert "cannot be read" in refusal("skops", lying).message


def test_a_truncated_skops_archive_is_refused(skops_bytes: bytes) -> None:
    assert "corrupt ZIP" in refusal("skops", skops_bytes[: len(skops_bytes) // 2]).message


# --- ONNX -----------------------------------------------------------------------------------------

def test_an_onnx_model_is_accepted_with_its_graph_signature(onnx_bytes: bytes) -> None:
    inspection = inspect_model(ModelFormat.ONNX, onnx_bytes)
    model = onnx.load_from_string(onnx_bytes)
    assert inspection == ModelInspection(
        ModelFormat.ONNX, len(onnx_bytes), ir_version=model.ir_version,
        producer_name="skl2onnx", producer_version=model.producer_version,
        opsets=tuple((o.domain or "ai.onnx", o.version) for o in model.opset_import),
        inputs=("X",), outputs=tuple(o.name for o in model.graph.output))


def test_an_onnx_model_is_read_from_a_stream(onnx_bytes: bytes) -> None:
    assert inspect_model("onnx", io.BytesIO(onnx_bytes)).inputs == ("X",)


@pytest.mark.parametrize("keep", [1, 3, 10, -40, -1])
def test_a_truncated_onnx_model_is_refused(onnx_bytes: bytes, keep: int) -> None:
    error = refusal("onnx", onnx_bytes[:keep])
    assert "ONNX" in error.message and error.details["declared"] == "onnx"


@pytest.mark.parametrize("tail", [b"garbage", b"\x00", b"\x08\x07", b"\x12\x02hi",
                                  pickle.dumps("payload")])
def test_an_onnx_model_with_trailing_bytes_is_refused(onnx_bytes: bytes, tail: bytes) -> None:
    assert "ONNX ModelProto" in refusal("onnx", onnx_bytes + tail).message


@pytest.mark.parametrize("head", [b"\x0b", b"\x0e", b"\x0f", b"\x0a\x01x"],
                         ids=["group-start", "wire-type-6", "wire-type-7", "ir-version-as-bytes"])
def test_an_onnx_model_with_an_invalid_wire_type_is_refused(onnx_bytes: bytes, head: bytes) -> None:
    assert "wire type" in refusal("onnx", head + onnx_bytes).message


def test_an_onnx_model_without_a_graph_is_refused() -> None:
    model = onnx.ModelProto(ir_version=9, opset_import=[helper.make_opsetid("", 17)])
    assert "no graph" in refusal("onnx", model.SerializeToString()).message


def tiny_graph(initializers: list[TensorProto] | None = None) -> onnx.GraphProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    return helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y],
                             initializer=initializers or [])


def test_an_onnx_model_importing_no_operator_set_is_refused() -> None:
    model = onnx.ModelProto(ir_version=9, graph=tiny_graph())
    assert "operator set" in refusal("onnx", model.SerializeToString()).message


def external(location: str) -> bytes:
    weights = numpy_helper.from_array(np.zeros(3, dtype=np.float32), "w")
    set_external_data(weights, location=location)
    weights.ClearField("raw_data")
    return helper.make_model(tiny_graph([weights]), opset_imports=[helper.make_opsetid("", 17)]
                             ).SerializeToString()


def test_an_onnx_model_reports_where_its_external_data_lives() -> None:
    assert inspect_model("onnx", external("weights.bin")).external_data == ("weights.bin",)


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "a\\..\\b"])
def test_an_onnx_model_with_external_data_outside_the_package_is_refused(location: str) -> None:
    assert "unsafe location" in refusal("onnx", external(location)).message


def test_a_skops_file_declared_onnx_is_refused_naming_both(skops_bytes: bytes) -> None:
    error = refusal("onnx", skops_bytes)
    assert "onnx" in error.message and "ZIP archive" in error.message


def test_an_onnx_model_declared_skops_is_refused(onnx_bytes: bytes) -> None:
    error = refusal("skops", onnx_bytes)
    assert "skops" in error.message and error.details["found"] == "unknown"


@pytest.mark.parametrize("declared", DECLARED)
@pytest.mark.parametrize("data, found", [
    (b"feature,label\n1,0\n", "text"), (b'{"coef": [1.0]}', "json"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "unknown"), (gzip.compress(b"hello"), "gzip"),
], ids=["csv", "json", "png", "gzip"])
def test_a_file_of_another_kind_is_refused_naming_what_it_is(declared: ModelFormat, data: bytes,
                                                            found: str) -> None:
    error = refusal(declared, data)
    assert declared.value in error.message
    assert (error.details["declared"], error.details["found"]) == (declared.value, found)


@pytest.mark.parametrize("declared", ["pickle", "joblib", "pytorch", ""])
def test_a_format_that_is_neither_skops_nor_onnx_is_refused(onnx_bytes: bytes,
                                                             declared: str) -> None:
    error = refusal(declared, onnx_bytes)
    assert f"model format {declared!r} is not accepted" in error.message


# --- Pickles, whatever the declared format --------------------------------------------------------

def assert_refused_as_pickle(declared: ModelFormat, data: bytes) -> ValidationError:
    error = refusal(declared, data)
    assert error.details["found"] == "pickle" and "pickle" in error.message
    assert declared.value in error.message
    return error


@pytest.mark.parametrize("declared", DECLARED)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_pickled_model_is_refused_naming_pickle(pipeline: Pipeline, declared: ModelFormat,
                                                  protocol: int) -> None:
    assert_refused_as_pickle(declared, pickle.dumps(pipeline, protocol=protocol))


@pytest.mark.parametrize("declared", DECLARED)
@pytest.mark.parametrize("compress", [0, 3, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("lzma", 3),
                                      ("xz", 3)], ids=str)
def test_a_joblib_dump_is_refused_naming_pickle(pipeline: Pipeline, declared: ModelFormat,
                                                compress: Any) -> None:
    out = io.BytesIO()
    joblib.dump(pipeline, out, compress=compress)
    assert_refused_as_pickle(declared, out.getvalue())


@pytest.mark.parametrize("declared", DECLARED)
def test_a_joblib_dump_compressed_with_lz4_is_refused_naming_pickle(pipeline: Pipeline,
                                                                    declared: ModelFormat) -> None:
    pytest.importorskip("lz4")
    out = io.BytesIO()
    joblib.dump(pipeline, out, compress="lz4")
    assert_refused_as_pickle(declared, out.getvalue())


@pytest.mark.parametrize("declared", DECLARED)
def test_a_joblib_file_from_before_0_9_3_is_refused_naming_pickle(pipeline: Pipeline,
                                                                  declared: ModelFormat) -> None:
    out = io.BytesIO()
    write_zfile(out, pickle.dumps(pipeline, protocol=2))
    assert_refused_as_pickle(declared, out.getvalue())


@pytest.mark.parametrize("declared", DECLARED)
def test_a_cloudpickled_model_is_refused_naming_pickle(declared: ModelFormat) -> None:
    cloudpickle = pytest.importorskip("cloudpickle")
    assert_refused_as_pickle(declared, cloudpickle.dumps(lambda x: x + 1))


@pytest.mark.parametrize("declared", DECLARED)
@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress, zlib.compress],
                         ids=["gzip", "bz2", "xz", "zlib"])
def test_a_compressed_pickle_is_refused_naming_pickle(declared: ModelFormat,
                                                      compress: Callable[[bytes], bytes]) -> None:
    assert_refused_as_pickle(declared, compress(pickle.dumps({"coef": [1.0, 2.0]})))


@pytest.mark.parametrize("declared", DECLARED)
def test_a_numpy_array_of_objects_is_refused_naming_pickle(declared: ModelFormat) -> None:
    assert_refused_as_pickle(declared, npy(np.array([{"a": 1}], dtype=object), allow_pickle=True))


def test_a_numpy_array_of_numbers_is_refused_as_not_a_model() -> None:
    error = refusal("skops", npy(np.arange(3.0)))
    assert error.details["found"] == "npy" and "NumPy" in error.message


def torch_like(*names: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in names:
            z.writestr(name, pickle.dumps({"weight": [1.0]}) if name.endswith(".pkl") else b"0")
    return out.getvalue()


@pytest.mark.parametrize("declared", DECLARED)
def test_a_pytorch_checkpoint_is_refused_naming_pickle(declared: ModelFormat) -> None:
    checkpoint = torch_like("archive/data.pkl", "archive/byteorder", "archive/data/0",
                            "archive/version")
    assert "PyTorch" in assert_refused_as_pickle(declared, checkpoint).message


# --- Bounds ---------------------------------------------------------------------------------------

def test_a_file_over_the_size_limit_is_refused_as_too_large(onnx_bytes: bytes) -> None:
    with pytest.raises(TooLarge):
        inspect_model("onnx", onnx_bytes, Limits(max_bytes=len(onnx_bytes) - 1))


class OneWay(io.RawIOBase):
    """A stream that cannot seek, as a request body is."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


def test_a_stream_that_cannot_seek_is_read_no_further_than_the_limit(onnx_bytes: bytes) -> None:
    assert inspect_model("onnx", io.BufferedReader(OneWay(onnx_bytes))).inputs == ("X",)
    with pytest.raises(TooLarge):
        inspect_model("onnx", io.BufferedReader(OneWay(onnx_bytes)), Limits(max_bytes=100))


def test_an_empty_file_is_refused() -> None:
    assert "empty" in refusal("skops", b"").message


def flip(data: bytes, positions: list[int]) -> bytes:
    mutated = bytearray(data)
    for position in positions:
        mutated[position % len(mutated)] ^= 0xFF
    return bytes(mutated)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0), min_size=1, max_size=4))
def test_a_damaged_skops_file_is_accepted_or_refused_never_crashes(skops_bytes: bytes,
                                                                  positions: list[int]) -> None:
    try:
        inspect_model("skops", flip(skops_bytes, positions))
    except ValidationError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0), min_size=1, max_size=4))
def test_a_damaged_onnx_model_is_accepted_or_refused_never_crashes(onnx_bytes: bytes,
                                                                  positions: list[int]) -> None:
    try:
        inspect_model("onnx", flip(onnx_bytes, positions))
    except ValidationError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512), st.sampled_from(DECLARED))
def test_arbitrary_bytes_are_accepted_or_refused_never_crash(data: bytes,
                                                             declared: ModelFormat) -> None:
    try:
        inspect_model(declared, data)
    except ValidationError:
        pass
