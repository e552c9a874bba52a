"""Rendering for the CLI: readable Rich tables by default, the API's JSON with ``--output json``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console()
errors = Console(stderr=True)


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


def as_json(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json(indent=2)
    if isinstance(value, list):
        return json.dumps([v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value], indent=2)
    return json.dumps(value, indent=2, default=str)


def show(fmt: Format, value: Any, render: Callable[[], None]) -> None:
    if fmt is Format.JSON:
        print(as_json(value))
    else:
        render()


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = Table(title=title, header_style="bold", show_lines=False)
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*[Text("" if v is None else str(v)) for v in row])  # data, never markup
    console.print(t)


def when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""
