"""The model registry: package groups, versioned packages and their approval state machine.

A package's approval binds to its artifact digests: the history records, with every decision, the
digests it was made on, so a later change of artifacts can never inherit an earlier approval.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from charter.domain.crn import CRN
from charter.domain.names import check_name
from charter.errors import InvalidTransition, ValidationError

SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_ARTIFACTS = 1000
MAX_PATH = 512


class ApprovalStatus(StrEnum):
    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


class ModelFormat(StrEnum):
    """The formats a package may carry. Pickle-based formats are absent on purpose: loading them
    runs arbitrary code."""

    SKOPS = "skops"
    ONNX = "onnx"


def check_artifact_path(path: str) -> str:
    """A relative POSIX path inside the package, already normal; anything else is refused."""
    if (not isinstance(path, str) or not path or len(path) > MAX_PATH or "\\" in path
            or "\x00" in path or "%" in path or path.startswith("/") or ":" in path.split("/")[0]):
        raise ValidationError(f"invalid artifact path {path!r}", field="path", value=str(path)[:MAX_PATH])
    if unicodedata.normalize("NFKC", path) != path:
        # Fullwidth dots and solidi, the two-dot leader …: harmless on a POSIX file system, but a
        # tool that normalises names (a zip writer, a file system on another OS) turns them into
        # ".." and "/". A name that means one thing everywhere is in its NFKC form already.
        raise ValidationError(f"artifact path {path!r} must be in Unicode normal form NFKC", field="path",
                              value=path)
    normal = posixpath.normpath(path)
    if normal != path or normal == "." or normal.startswith("..") or "/../" in f"/{normal}/":
        raise ValidationError(f"artifact path {path!r} must be relative and normalised", field="path",
                              value=path)
    return path


@dataclass(frozen=True, slots=True)
class Artifact:
    path: str
    size: int
    sha256: str

    def __post_init__(self) -> None:
        check_artifact_path(self.path)
        if not SHA256.fullmatch(self.sha256):
            raise ValidationError(f"invalid SHA-256 digest for {self.path}", field="sha256")
        if self.size < 0:
            raise ValidationError(f"negative size for {self.path}", field="size")


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str
    dtype: str


@dataclass(frozen=True, slots=True)
class Signature:
    """What the model takes and returns; endpoints validate requests against it."""

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class Lineage:
    registered_by: str
    run: str | None = None
    run_started_by: str | None = None
    datasets: tuple[str, ...] = ()
    product_version: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()

    @property
    def responsible(self) -> frozenset[str]:
        """Who produced the package: none of them may approve it (separation of duties)."""
        return frozenset(p for p in (self.registered_by, self.run_started_by) if p)


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: ApprovalStatus
    previous: ApprovalStatus | None
    actor: str
    comment: str
    time: datetime
    digests: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ModelPackageGroup:
    account: str
    name: str
    description: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    readers: tuple[str, ...] = ()
    """Accounts (``ml-test``) or organizational units (``ou:deployments``) that may read it."""

    def __post_init__(self) -> None:
        check_name(self.account, "account")
        check_name(self.name, "model package group")
        for reader in self.readers:
            check_name(reader.removeprefix("ou:"), "reader")

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "registry", "model-package-group", self.name)


@dataclass(frozen=True, slots=True)
class ModelPackage:
    account: str
    group: str
    version: int
    format: ModelFormat
    artifacts: tuple[Artifact, ...]
    lineage: Lineage
    created_at: datetime
    status: ApprovalStatus = ApprovalStatus.PENDING
    signature: Signature | None = None
    metrics: tuple[tuple[str, float], ...] = ()
    sample_payload: dict[str, Any] | None = None
    description: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    origin: str | None = None
    """The source package's CRN when this one was promoted from another account."""
    history: tuple[StatusChange, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValidationError("package versions start at 1", field="version")
        if not self.artifacts:
            raise ValidationError("a package needs at least one artifact", field="artifacts")
        if len(self.artifacts) > MAX_ARTIFACTS:
            raise ValidationError(f"a package holds at most {MAX_ARTIFACTS} artifacts", field="artifacts")
        paths = [a.path for a in self.artifacts]
        if len(set(paths)) != len(paths):
            raise ValidationError("artifact paths must be unique", field="artifacts")

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "registry", "model-package", self.group, str(self.version))

    @property
    def digests(self) -> tuple[str, ...]:
        return tuple(sorted(a.sha256 for a in self.artifacts))

    def decide(self, status: ApprovalStatus, actor: str, comment: str, time: datetime) -> ModelPackage:
        """Record an approval decision; a status may change later, but never to itself."""
        if status is ApprovalStatus.PENDING:
            raise InvalidTransition("a package cannot be sent back to PendingManualApproval",
                                    package=str(self.crn))
        if status is self.status:
            raise InvalidTransition(f"{self.crn} is already {status}", package=str(self.crn),
                                    status=str(status))
        change = StatusChange(status, self.status, actor, comment, time, self.digests)
        return replace(self, status=status, history=(*self.history, change))

    @property
    def approval(self) -> StatusChange | None:
        """The decision in force when the package is approved on its current artifacts."""
        if self.status is not ApprovalStatus.APPROVED or not self.history:
            return None
        last = self.history[-1]
        return last if last.digests == self.digests else None
