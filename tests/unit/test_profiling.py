"""Profiling dataset files: CSV dtype inference and refusals, Parquet footers."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from charter.domain.datasets import Column, DataFormat
from charter.errors import ValidationError
from charter.services import profiling
from charter.services.profiling import profile, profile_csv, profile_parquet


def _csv(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def test_csv_dtypes_are_inferred_from_every_value() -> None:
    made = profile_csv(_csv("id,score,flag,name,mixed,blank\n1,0.5,true,a,1,\n2,3,False,b,x,\n"))
    assert made.rows == 2
    assert made.columns == (Column("id", "int64"), Column("score", "float64"), Column("flag", "bool"),
                            Column("name", "string"), Column("mixed", "string"), Column("blank", "string"))


def test_csv_integers_beyond_int64_are_floats_and_quoted_commas_stay_in_one_field() -> None:
    made = profile_csv(_csv('big,text\n99999999999999999999,"a, b"\n'))
    assert made.columns == (Column("big", "float64"), Column("text", "string")) and made.rows == 1


def test_a_ragged_row_is_refused_naming_its_line() -> None:
    with pytest.raises(ValidationError) as refused:
        profile_csv(_csv("a,b\n1,2\n3\n"))
    assert refused.value.details["line"] == 3 and "2" in refused.value.message


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(ValidationError, match="empty"):
        profile_csv(_csv(""))


def test_duplicate_and_empty_header_names_are_refused_naming_the_column() -> None:
    with pytest.raises(ValidationError) as duplicate:
        profile_csv(_csv("a,b,a\n1,2,3\n"))
    assert duplicate.value.details["column"] == 3
    with pytest.raises(ValidationError) as empty:
        profile_csv(_csv("a,,c\n1,2,3\n"))
    assert empty.value.details["column"] == 2


def test_an_over_large_header_is_refused() -> None:
    header = ",".join(f"c{i:07d}" for i in range(150_000))
    with pytest.raises(ValidationError, match="header is larger") as refused:
        profile_csv(_csv(header + "\n"))
    assert refused.value.details["line"] == 1


def test_a_file_that_is_not_utf8_is_refused_naming_the_line() -> None:
    with pytest.raises(ValidationError, match="UTF-8") as refused:
        profile_csv(io.BytesIO(b"a\n1\n\xff\xfe\n"))
    assert refused.value.details["line"] == 3


def _parquet(table: pa.Table) -> io.BytesIO:
    out = io.BytesIO()
    pq.write_table(table, out)
    out.seek(0)
    return out


def test_a_parquet_schema_and_row_count_come_from_its_footer() -> None:
    table = pa.table({"age": pa.array([30, 41, 52], pa.int64()), "balance": [1.5, 2.0, None],
                      "job": ["a", "b", "c"], "y": [True, False, True]})
    made = profile(DataFormat.PARQUET, _parquet(table))
    assert made.rows == 3
    assert made.columns == (Column("age", "int64"), Column("balance", "float64"), Column("job", "string"),
                            Column("y", "bool"))


def test_a_file_without_the_parquet_magic_bytes_is_refused() -> None:
    with pytest.raises(ValidationError, match="PAR1"):
        profile_parquet(_csv("a,b\n1,2\n"))


def test_parquet_without_pyarrow_is_refused_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> object:
        raise ImportError(name)

    monkeypatch.setattr(profiling.importlib, "import_module", missing)
    with pytest.raises(ValidationError, match=r"charter\[data\]") as refused:
        profile_parquet(_parquet(pa.table({"a": [1]})))
    assert refused.value.details["extra"] == "data"
