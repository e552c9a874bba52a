"""Approved packages in the central registry, ready to serve, for the endpoint tests."""

from __future__ import annotations

import itertools
from typing import Any

from charter.domain import commands as c
from charter.domain.identity import Identity
from charter.errors import NotFound
from charter.services.messagebus import MessageBus
from tests.models import onnx_model, skops_model, unloadable_onnx_model

CENTRAL = "ml-shared-services"
SIGNATURE = {"inputs": [{"name": "f0", "dtype": "double"}, {"name": "f1", "dtype": "double"}],
             "outputs": [{"name": "label", "dtype": "long"}]}
SAMPLE = {"instances": [[0.0, 1.0], [1.0, 0.0]]}
_groups = itertools.count(1)


def publish(bus: MessageBus, registrar: Identity, approver: Identity, *, fmt: str = "skops",
            model: bytes | None = None, readers: tuple[str, ...] = ("ou:deployments",),
            group: str | None = None, approve: bool = True, sample: dict[str, Any] | None = SAMPLE,
            signature: dict[str, Any] | None = SIGNATURE) -> str:
    """Register one package in the central registry (a new group unless ``group``), approved unless
    told otherwise; its CRN."""
    name = group or f"churn-{next(_groups)}"
    try:
        bus.handle(c.GetModelPackageGroup(CENTRAL, name), registrar)
    except NotFound:
        bus.handle(c.CreateModelPackageGroup(CENTRAL, name, readers=readers), registrar)
    content = model if model is not None else (skops_model() if fmt == "skops" else onnx_model())
    blob = bus.handle(c.UploadArtifact(CENTRAL, [content], 64 * 1024 * 1024), registrar)
    package = bus.handle(c.RegisterModelPackage(CENTRAL, name, fmt, (c.ArtifactRef(f"model.{fmt}", blob.sha256),),
                                                signature=signature, sample_payload=sample), registrar)
    if approve:
        bus.handle(c.DecideModelPackage(CENTRAL, name, package.version, "Approved", "ok for serving"), approver)
    return str(package.crn)


def publish_unloadable(bus: MessageBus, registrar: Identity, approver: Identity, **kw: Any) -> str:
    return publish(bus, registrar, approver, fmt="onnx", model=unloadable_onnx_model(), **kw)
