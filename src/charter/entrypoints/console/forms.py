"""A launch form generated from a product version's JSON Schema: one field per property, typed
by the schema (the server reads the text as JSON where the schema wants a number, boolean …)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    kind: str
    """text, number, checkbox, select or json."""
    required: bool
    default: str
    description: str
    choices: tuple[str, ...] = ()


def fields(schema: dict[str, Any]) -> list[Field]:
    required = set(schema.get("required", []))
    out = []
    for name, spec in (schema.get("properties") or {}).items():
        if not isinstance(spec, dict):
            continue
        kind_of = spec.get("type", "string")
        default = spec.get("default")
        text = "" if default is None else (default if isinstance(default, str) else json.dumps(default))
        if "enum" in spec:
            kind, choices = "select", tuple(str(v) for v in spec["enum"])
        elif kind_of in ("integer", "number"):
            kind, choices = "number", ()
        elif kind_of == "boolean":
            kind, choices = "select", ("true", "false")
        elif kind_of in ("array", "object"):
            kind, choices = "json", ()
        else:
            kind, choices = "text", ()
        out.append(Field(name, str(spec.get("title", name)), kind, name in required, text,
                         str(spec.get("description", "")), choices))
    return out


def values(form_fields: list[Field], given: dict[str, str]) -> dict[str, str]:
    """The fields the user filled in; empty ones are left to the schema's defaults."""
    return {f.name: given[f.name] for f in form_fields if given.get(f.name, "").strip()}
