"""Endpoints: what an account serves, as numbered configuration revisions, and the checks a request
to them passes before it reaches a model.

An endpoint keeps every revision it was given (who, when, why, and how its rollout went). A new
revision is rolled out blue/green: it takes traffic only once its workers are healthy, so the
revision that serves (``serving_revision``) is the last one whose rollout succeeded, not
necessarily the latest one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from charter.domain.crn import CRN
from charter.domain.registry import ColumnSpec
from charter.errors import InvalidTransition, ValidationError

MAX_VARIANTS = 10
MAX_REPLICAS = 16
MAX_ROWS = 10_000
MAX_REASON = 2000
_VARIANT = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_STRING_TYPES = frozenset({"string", "str", "object", "bytes"})


class RevisionStatus(StrEnum):
    """How a revision's rollout went (the values of the deployments port's RolloutStatus)."""

    UPDATING = "Updating"
    IN_SERVICE = "InService"
    FAILED = "Failed"
    SUPERSEDED = "Superseded"

    @property
    def finished(self) -> bool:
        return self is not RevisionStatus.UPDATING


class EndpointStatus(StrEnum):
    CREATING = "Creating"      # nothing serves yet; the first revision is rolling out
    IN_SERVICE = "InService"   # a revision serves, none is rolling out
    UPDATING = "Updating"      # a revision serves while a newer one rolls out
    FAILED = "Failed"          # nothing serves and the latest rollout failed


@dataclass(frozen=True, slots=True)
class Variant:
    """One model package an endpoint serves, with its share of the traffic."""

    name: str
    package: str
    """The package CRN (possibly in another account)."""
    weight: float
    format: str
    model_sha256: str
    """The model file's digest, read from the package's own account store."""
    inputs: tuple[ColumnSpec, ...] | None = None
    """The package's input signature; None when it declares none (only row widths are checked)."""
    sample_payload: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not _VARIANT.match(self.name):
            raise ValidationError(f"invalid variant name {self.name!r}: lowercase letters, digits and "
                                  "hyphens, starting with a letter", field="variants.name")
        if not (isinstance(self.weight, int | float) and math.isfinite(self.weight) and self.weight > 0):
            raise ValidationError(f"variant {self.name}: the weight must be a positive number",
                                  field="variants.weight")

    @property
    def package_account(self) -> str:
        return CRN.parse(self.package).account

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "package": self.package, "weight": self.weight, "format": self.format,
                "model_sha256": self.model_sha256,
                "inputs": None if self.inputs is None else [[c.name, c.dtype] for c in self.inputs],
                "sample_payload": self.sample_payload}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Variant:
        inputs = doc.get("inputs")
        return cls(doc["name"], doc["package"], float(doc["weight"]), doc["format"], doc["model_sha256"],
                   None if inputs is None else tuple(ColumnSpec(n, d) for n, d in inputs),
                   doc.get("sample_payload"))


def default_variant_name(package: str) -> str:
    """``churn-ml-dev-v1`` for ``crn:...:model-package/churn-ml-dev/1``, cut to a valid name."""
    crn = CRN.parse(package)
    name = re.sub(r"[^a-z0-9-]", "-", f"{crn.name}-v{crn.version}".lower())
    if not name[:1].isalpha():
        name = f"v-{name}"
    return name[:63].rstrip("-")


@dataclass(frozen=True, slots=True)
class Revision:
    number: int
    variants: tuple[Variant, ...]
    replicas: int
    capture_percent: float
    created_by: str
    created_at: datetime
    reason: str
    status: RevisionStatus = RevisionStatus.UPDATING
    status_reason: str | None = None
    finished_at: datetime | None = None
    rollback_of: int | None = None
    """The revision whose configuration a rollback brought back."""

    def __post_init__(self) -> None:
        check_config(self.variants, self.replicas, self.capture_percent)

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(v.package for v in self.variants)


def check_config(variants: Sequence[Variant], replicas: int, capture_percent: float) -> None:
    if not 1 <= len(variants) <= MAX_VARIANTS:
        raise ValidationError(f"an endpoint serves 1 to {MAX_VARIANTS} variants", field="variants")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValidationError("variant names must be unique", field="variants")
    if not (isinstance(replicas, int) and 1 <= replicas <= MAX_REPLICAS):
        raise ValidationError(f"replicas must be 1 to {MAX_REPLICAS}", field="replicas")
    if not (isinstance(capture_percent, int | float) and 0 <= capture_percent <= 100):
        raise ValidationError("data capture is a percentage from 0 to 100", field="capture_percent")


@dataclass(frozen=True, slots=True)
class Capture:
    """One batch of captured request/response pairs, stored content-addressed (JSON lines)."""

    account: str
    endpoint: str
    sha256: str
    records: int
    size: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Endpoint:
    account: str
    name: str
    created_by: str
    created_at: datetime
    revisions: tuple[Revision, ...]
    serving_revision: int | None = None

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "endpoints", "endpoint", self.name)

    @property
    def latest(self) -> Revision:
        return self.revisions[-1]

    def revision(self, number: int) -> Revision:
        for r in self.revisions:
            if r.number == number:
                return r
        raise KeyError(number)

    @property
    def serving(self) -> Revision | None:
        return self.revision(self.serving_revision) if self.serving_revision is not None else None

    @property
    def status(self) -> EndpointStatus:
        latest = self.latest.status
        if latest is RevisionStatus.UPDATING:
            return EndpointStatus.UPDATING if self.serving_revision is not None else EndpointStatus.CREATING
        if self.serving_revision is None:
            return EndpointStatus.FAILED
        return EndpointStatus.IN_SERVICE

    @property
    def rolling_out(self) -> Revision | None:
        return self.latest if self.latest.status is RevisionStatus.UPDATING else None

    def with_revision(self, revision: Revision) -> tuple[Endpoint, list[int]]:
        """The endpoint with ``revision`` appended (numbered next), and the revisions it superseded
        (any still rolling out: only the newest configuration asked for rolls out)."""
        if revision.number != self.latest.number + 1:
            raise ValueError("revisions are numbered in order")
        superseded: list[int] = []
        kept = []
        for r in self.revisions:
            if r.status is RevisionStatus.UPDATING:
                r = replace(r, status=RevisionStatus.SUPERSEDED, finished_at=revision.created_at,
                            status_reason=f"superseded by revision {revision.number}")
                superseded.append(r.number)
            kept.append(r)
        return replace(self, revisions=(*kept, revision)), superseded

    def finish(self, number: int, ok: bool, reason: str | None, now: datetime) -> Endpoint:
        """Record the end of a revision's rollout: healthy, it serves; failed, what served goes on."""
        revision = self.revision(number)
        if revision.status.finished:
            raise InvalidTransition(f"revision {number} of {self.crn} is {revision.status} already",
                                    revision=number, status=str(revision.status))
        done = replace(revision, status=RevisionStatus.IN_SERVICE if ok else RevisionStatus.FAILED,
                       status_reason=reason, finished_at=now)
        revisions = tuple(done if r.number == number else r for r in self.revisions)
        return replace(self, revisions=revisions, serving_revision=number if ok else self.serving_revision)

    def rollback_source(self) -> Revision:
        """The configuration before the one that serves: the newest revision older than it whose
        rollout succeeded."""
        if self.serving_revision is None:
            raise InvalidTransition(f"{self.crn} serves nothing yet: there is nothing to roll back",
                                    endpoint=self.name)
        serving = self.revision(self.serving_revision)
        for r in reversed(self.revisions):
            if r.number < serving.number and r.status is RevisionStatus.IN_SERVICE:
                return r
        raise InvalidTransition(f"{self.crn} has no configuration before revision {serving.number} "
                                "to go back to", endpoint=self.name, revision=serving.number)


def new_endpoint(account: str, name: str, revision: Revision) -> Endpoint:
    if revision.number != 1:
        raise ValueError("an endpoint starts at revision 1")
    return Endpoint(account, name, revision.created_by, revision.created_at, (revision,))


def choose_variant(variants: Sequence[Variant], draw: float) -> Variant:
    """The variant a request goes to, for ``draw`` uniform in [0, 1): each takes its weight's share."""
    total = sum(v.weight for v in variants)
    point = draw * total
    for v in variants:
        point -= v.weight
        if point < 0:
            return v
    return variants[-1]


# --- requests ----------------------------------------------------------------------------------

def _value(value: Any, dtype: str | None, where: str) -> float | str:
    if dtype is not None and dtype.lower() in _STRING_TYPES:
        if not isinstance(value, str):
            raise ValidationError(f"{where}: expected a string, got {_kind(value)}", field=where)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{where}: expected a number, got {_kind(value)}", field=where)
    if not math.isfinite(value):
        raise ValidationError(f"{where}: expected a finite number", field=where)
    return float(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def parse_rows(payload: Any, inputs: tuple[ColumnSpec, ...] | None,
               max_rows: int = MAX_ROWS) -> list[list[float | str]]:
    """The rows of ``{"instances": [[...], ...]}`` or ``{"inputs": {"column": [...]}}``, in the
    signature's column order, checked against it; every refusal names what is wrong."""
    if not isinstance(payload, dict):
        raise ValidationError('the body must be a JSON object: {"instances": [[...]]} or '
                              '{"inputs": {"column": [...]}}', field="body")
    keys = set(payload)
    if keys == {"instances"}:
        rows = _instances(payload["instances"], inputs, max_rows)
    elif keys == {"inputs"}:
        rows = _columns(payload["inputs"], inputs, max_rows)
    else:
        raise ValidationError('the body holds exactly one of "instances" or "inputs"'
                              + (f", not {', '.join(sorted(map(str, keys)))}" if keys else ""), field="body")
    return rows


def _instances(instances: Any, inputs: tuple[ColumnSpec, ...] | None, max_rows: int) -> list[list[float | str]]:
    if not isinstance(instances, list):
        raise ValidationError("instances must be a list of rows", field="instances")
    if not instances:
        raise ValidationError("instances is empty: send at least one row", field="instances")
    if len(instances) > max_rows:
        raise ValidationError(f"too many rows: {len(instances)} (at most {max_rows})", field="instances",
                              limit=max_rows)
    width = len(inputs) if inputs is not None else None
    out: list[list[float | str]] = []
    for i, row in enumerate(instances):
        if not isinstance(row, list):
            raise ValidationError(f"instances[{i}] must be a list of values, got {_kind(row)}",
                                  field=f"instances[{i}]")
        if width is None:
            width = len(row)
            if width == 0:
                raise ValidationError("instances[0] is empty", field="instances[0]")
        if len(row) != width:
            expected = f"the signature has {width} columns" if inputs is not None else \
                f"instances[0] has {width}"
            raise ValidationError(f"instances[{i}] has {len(row)} values; {expected}"
                                  + ("" if inputs is None else f" ({', '.join(c.name for c in inputs)})"),
                                  field=f"instances[{i}]", expected=width, got=len(row))
        out.append([_value(v, inputs[j].dtype if inputs else None,
                           f"instances[{i}][{j}]" + (f" ({inputs[j].name})" if inputs else ""))
                    for j, v in enumerate(row)])
    return out


def _columns(columns: Any, inputs: tuple[ColumnSpec, ...] | None, max_rows: int) -> list[list[float | str]]:
    if inputs is None:
        raise ValidationError('the package declares no input signature: send {"instances": [[...]]}',
                              field="inputs")
    if not isinstance(columns, dict):
        raise ValidationError("inputs must be an object of column -> list of values", field="inputs")
    if not columns:
        raise ValidationError("inputs is empty: send every column of the signature", field="inputs")
    names = [c.name for c in inputs]
    unknown = sorted(set(columns) - set(names))
    if unknown:
        raise ValidationError(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                              f"the signature has {', '.join(names)}", field="inputs", unknown=unknown)
    missing = [n for n in names if n not in columns]
    if missing:
        raise ValidationError(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                              field="inputs", missing=missing)
    length: int | None = None
    for name in names:
        values = columns[name]
        if not isinstance(values, list):
            raise ValidationError(f"inputs.{name} must be a list of values, got {_kind(values)}",
                                  field=f"inputs.{name}")
        if length is None:
            length = len(values)
        elif len(values) != length:
            raise ValidationError(f"ragged columns: inputs.{name} has {len(values)} values, "
                                  f"inputs.{names[0]} has {length}", field=f"inputs.{name}")
    assert length is not None
    if length == 0:
        raise ValidationError("inputs holds no rows", field="inputs")
    if length > max_rows:
        raise ValidationError(f"too many rows: {length} (at most {max_rows})", field="inputs", limit=max_rows)
    return [[_value(columns[c.name][i], c.dtype, f"inputs.{c.name}[{i}]") for c in inputs]
            for i in range(length)]
