"""Reading ``product.yaml``: YAML without aliases, the domain's structural checks, and the
``parameters`` checked to be a valid JSON Schema (Draft 2020-12) whose defaults satisfy it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from charter.domain.catalog import (
    MAX_PRODUCT_FILE_BYTES,
    PRODUCT_FILE,
    ProductSpec,
    parse_product,
    refuse_product,
)
from charter.domain.plan import Problem
from charter.errors import TooLarge

_META = Draft202012Validator(Draft202012Validator.META_SCHEMA)


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def schema_problems(schema: Any, where: str = "parameters") -> list[Problem]:
    """Why ``schema`` is not a valid Draft 2020-12 JSON Schema, or why a default it declares does
    not satisfy its own property schema; each problem named by its path in product.yaml."""
    problems = [Problem(f"{PRODUCT_FILE}: {where}{_path(e.absolute_path)}", e.message)
                for e in sorted(_META.iter_errors(schema), key=lambda e: list(map(str, e.absolute_path)))]
    if problems or not isinstance(schema, dict):
        return problems
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        return problems
    for name, sub in properties.items():
        if isinstance(sub, dict) and "default" in sub:
            try:
                errors = list(Draft202012Validator(sub).iter_errors(sub["default"]))
            except Exception as error:  # an unresolvable $ref, say: never fetched from anywhere
                problems.append(Problem(f"{PRODUCT_FILE}: {where}.properties.{name}", f"cannot be checked: {error}"))
                continue
            problems += [Problem(f"{PRODUCT_FILE}: {where}.properties.{name}.default", e.message) for e in errors]
    return problems


def _load_yaml(data: bytes) -> tuple[Any, list[Problem]]:
    try:
        text = data.decode("utf-8")
        # Aliases could expand a small file into an enormous document: refuse them outright.
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                return None, [Problem(PRODUCT_FILE, "YAML aliases (*name) are not allowed")]
        return yaml.safe_load(text), []
    except UnicodeDecodeError:
        return None, [Problem(PRODUCT_FILE, "is not UTF-8 text")]
    except yaml.YAMLError as error:
        return None, [Problem(PRODUCT_FILE, f"is not valid YAML: {error}")]


def load_product(data: bytes, files: Iterable[str]) -> ProductSpec:
    """The spec of a ``product.yaml``; ValidationError listing every problem by its path."""
    if len(data) > MAX_PRODUCT_FILE_BYTES:
        raise TooLarge(f"{PRODUCT_FILE} is larger than {MAX_PRODUCT_FILE_BYTES} bytes",
                       limit=MAX_PRODUCT_FILE_BYTES)
    doc, problems = _load_yaml(data)
    if problems:
        raise refuse_product(problems)
    spec, problems = parse_product(doc, files)
    if isinstance(doc, dict) and isinstance(doc.get("parameters"), dict):
        problems += schema_problems(doc["parameters"])
    if problems or spec is None:
        raise refuse_product(problems)
    return spec
