"""Charter Resource Names: ``crn:charter:<account>:<service>:<type>/<name>[/<version>]``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from charter.errors import ValidationError

SERVICES = frozenset(
    {"org", "iam", "catalog", "data", "pipelines", "registry", "cards", "events",
     "deployments", "endpoints", "audit"}
)

_SEPARATOR = re.compile(r"[:/ \t\n]")


@dataclass(frozen=True, slots=True)
class CRN:
    account: str
    service: str
    type: str
    name: str
    version: str | None = None

    def __post_init__(self) -> None:
        if self.service not in SERVICES:
            raise ValidationError(f"unknown CRN service {self.service!r}", service=self.service)
        for part in (self.account, self.type, self.name, self.version):
            if part is not None and (not part or _SEPARATOR.search(part)):
                raise ValidationError(f"invalid CRN component {part!r}")

    def __str__(self) -> str:
        tail = f"/{self.version}" if self.version is not None else ""
        return f"crn:charter:{self.account}:{self.service}:{self.type}/{self.name}{tail}"

    @classmethod
    def parse(cls, text: str) -> CRN:
        parts = text.split(":")
        if len(parts) != 5 or parts[0] != "crn" or parts[1] != "charter":
            raise ValidationError(f"not a CRN: {text!r}", value=text)
        _, _, account, service, path = parts
        segments = path.split("/")
        if len(segments) not in (2, 3):
            raise ValidationError(f"not a CRN: {text!r}", value=text)
        version = segments[2] if len(segments) == 3 else None
        return cls(account, service, segments[0], segments[1], version)
