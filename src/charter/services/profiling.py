"""Profiling a dataset file: its schema (ordered columns with dtypes) and row count.

CSV is read with the standard library ``csv`` module, every value looked at once to infer each
column's dtype. Parquet is read with pyarrow (the optional ``data`` extra), footer metadata only:
the schema and row count are there, so no data page is decoded whatever the file's size.
"""

from __future__ import annotations

import codecs
import csv
import importlib
import io
from dataclasses import dataclass
from typing import IO, Any

from charter.domain.datasets import Column, DataFormat, check_columns
from charter.errors import ValidationError

MAX_HEADER_BYTES = 1024 * 1024
MAX_FIELD_BYTES = 16 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024 * 1024
PARQUET_MAGIC = b"PAR1"
INT64 = "int64"
FLOAT64 = "float64"
BOOL = "bool"
STRING = "string"
_TRUE_FALSE = frozenset({"true", "false"})
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True)
class Profile:
    format: DataFormat
    columns: tuple[Column, ...]
    rows: int


def profile(data_format: DataFormat, file: IO[bytes]) -> Profile:
    """The schema and row count of a seekable binary file; ValidationError naming what is wrong."""
    if data_format is DataFormat.CSV:
        return profile_csv(file)
    return profile_parquet(file)


# --- CSV ----------------------------------------------------------------------------------

def _kind(value: str) -> str:
    """The narrowest dtype a non-empty value fits: int64, float64, bool or string."""
    text = value.strip()
    if text.lower() in _TRUE_FALSE:
        return BOOL
    try:
        number = int(text)
    except ValueError:
        pass
    else:
        return INT64 if _INT_MIN <= number <= _INT_MAX else FLOAT64
    try:
        float(text)
    except ValueError:
        return STRING
    return FLOAT64


def _widen(current: str | None, kind: str) -> str:
    """int64 widens to float64; bool mixed with numbers, or anything with text, is a string."""
    if current is None or current == kind:
        return kind
    if {current, kind} == {INT64, FLOAT64}:
        return FLOAT64
    return STRING


class _Lines:
    """The file as text lines, each decoded strictly as UTF-8 (a leading BOM dropped), counting
    lines read. UTF-8 never splits a character across a newline, so lines decode on their own."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.line = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        limit = MAX_HEADER_BYTES if self.line == 0 else MAX_LINE_BYTES
        raw = self._file.readline(limit + 1)
        if not raw:
            raise StopIteration
        self.line += 1
        if len(raw) > limit:
            what = "the header is" if self.line == 1 else "the line is"
            raise ValidationError(f"line {self.line}: {what} larger than {limit} bytes", field="file",
                                  line=self.line, limit=limit)
        if self.line == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValidationError(f"line {self.line}: the file is not UTF-8 text ({error.reason})",
                                  field="file", line=self.line) from None


def profile_csv(file: IO[bytes]) -> Profile:
    lines = _Lines(file)
    reader = csv.reader(lines, strict=True)
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(MAX_FIELD_BYTES)
    try:
        try:
            header = next(reader, None)
        except csv.Error as error:
            raise ValidationError(f"line {lines.line}: {error}", field="file", line=lines.line) from None
        if header is None or header == []:
            raise ValidationError("the file is empty: a CSV dataset starts with a header line",
                                  field="file", line=1)
        columns = _header(header)
        kinds: list[str | None] = [None] * len(columns)
        rows = 0
        try:
            for record in reader:
                if not record:
                    continue  # a blank line carries no row
                if len(record) != len(columns):
                    raise ValidationError(
                        f"line {lines.line}: {len(record)} fields where the header has {len(columns)}",
                        field="file", line=lines.line, fields=len(record), expected=len(columns))
                rows += 1
                for i, value in enumerate(record):
                    if value.strip():
                        kinds[i] = _widen(kinds[i], _kind(value))
        except csv.Error as error:
            raise ValidationError(f"line {lines.line}: {error}", field="file", line=lines.line) from None
    finally:
        csv.field_size_limit(previous_limit)
    # A column with no value at all has nothing to infer from: it is text.
    return Profile(DataFormat.CSV, tuple(Column(name, kind or STRING) for name, kind in zip(columns, kinds,
                                                                                            strict=True)),
                   rows)


def _header(header: list[str]) -> list[str]:
    names = [name.strip() for name in header]
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if not name:
            raise ValidationError(f"line 1, column {i}: empty column name", field="file", line=1, column=i)
        if name in seen:
            raise ValidationError(f"line 1, column {i}: duplicate column name {name!r} (also column "
                                  f"{seen[name]})", field="file", line=1, column=i, name=name)
        seen[name] = i
    check_columns(tuple(Column(n, STRING) for n in names))
    return names


# --- Parquet ------------------------------------------------------------------------------

def _pyarrow_parquet() -> Any:
    try:
        return importlib.import_module("pyarrow.parquet")
    except ImportError:
        # The server's installation lacks the optional extra: say which, rather than fail inside.
        raise ValidationError("this server cannot read Parquet datasets: it needs pyarrow, the "
                              "optional 'data' extra (pip install 'charter[data]')", field="format",
                              extra="data") from None


def profile_parquet(file: IO[bytes]) -> Profile:
    size = _size(file)
    file.seek(0)
    head = file.read(4)
    file.seek(max(size - 4, 0))
    tail = file.read(4)
    if size < 12 or head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
        raise ValidationError("not a Parquet file: it must start and end with the bytes PAR1",
                              field="file")
    pq = _pyarrow_parquet()
    file.seek(0)
    try:
        metadata = pq.ParquetFile(file).metadata
        schema = metadata.schema.to_arrow_schema()
    except Exception as error:  # pyarrow raises its own ArrowInvalid, OSError and more
        raise ValidationError(f"unreadable Parquet footer: {error}", field="file") from None
    columns = tuple(Column(str(f.name), _arrow_dtype(f.type)) for f in schema)
    try:
        check_columns(columns)
    except ValidationError as refused:
        raise ValidationError(f"Parquet schema: {refused.message}", **refused.details) from None
    return Profile(DataFormat.PARQUET, columns, int(metadata.num_rows))


def _arrow_dtype(arrow_type: Any) -> str:
    """Arrow's type name, with the CSV names for the types both formats share."""
    name = str(arrow_type)
    return {"double": FLOAT64, "int64": INT64, "bool": BOOL, "string": STRING,
            "large_string": STRING}.get(name, name)


def _size(file: IO[bytes]) -> int:
    here = file.tell()
    end = file.seek(0, io.SEEK_END)
    file.seek(here)
    return end
