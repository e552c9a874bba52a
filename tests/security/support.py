"""Helpers of the attack suite: the hostile encodings each class tries, and small real setups."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi.testclient import TestClient

from charter.domain import commands as c
from tests.integration.conftest import Org, auth
from tests.models import skops_model
from tests.unit.catalog_support import pack, template, template_files

__all__ = ["pack", "template", "template_files"]

DEV = "ml-dev"
SHARED = "ml-shared-services"

# Every way of spelling "somewhere outside" that a registry has been caught by: plain, URL-encoded,
# double-encoded, overlong UTF-8, backslashes, `#` fragments and `?` queries that a later parser
# drops, //proc/self/root, NUL, and unicode characters that normalise (NFKC) to dots and slashes.
TRAVERSALS = [
    "../etc/passwd",
    "../../../../../../etc/passwd",
    "a/../../etc/passwd",
    "a/b/../../../etc/passwd",
    "./../etc/passwd",
    "..",
    ".",
    "a/..",
    "%2e%2e/etc/passwd",
    "%2e%2e%2fetc%2fpasswd",
    "..%2fetc%2fpasswd",
    "..%252fetc%252fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "%c0%ae%c0%ae/etc/passwd",
    "..\\..\\etc\\passwd",
    "..%5c..%5cetc%5cpasswd",
    "a\\..\\..\\b",
    "/etc/passwd",
    "//etc/passwd",
    "//proc/self/root/etc/passwd",
    "/proc/self/environ",
    "\\\\server\\share\\x",
    "C:\\Windows\\win.ini",
    "C:/Windows/win.ini",
    "model.skops#/../../../etc/passwd",
    "model.skops%23/../../etc/passwd",
    "model.skops?/../../etc/passwd",
    "model\x00.skops",
    "model%00.skops",
    "../model\x00.skops",
    "\uff0e\uff0e/etc/passwd",       # fullwidth full stops
    "\u2025/etc/passwd",             # two dot leader
    "\uff0e\uff0e\uff0fetc\uff0fpasswd",  # fullwidth solidus too
    "a/./b",
    "a//b",
    "",
]

# Fields that could reach storage must never take a URI of any kind.
URIS = [
    "file:///etc/passwd",
    "file://localhost/etc/passwd",
    "FILE:///etc/passwd",
    "file:/etc/passwd",
    "s3://other-bucket/ml-prod/sha256/model",
    "s3://charter/ml-prod/sha256/aa/bb/" + "a" * 64,
    "http://127.0.0.1:8080/model.skops",
    "https://169.254.169.254/latest/meta-data/",
    "gs://bucket/model",
    "hdfs://namenode/model",
    "ftp://example.test/model",
    "jar:file:///tmp/x.jar!/model",
    "data:application/octet-stream;base64,gASVAAAA",
    "\\\\?\\C:\\model.skops",
]


def package_body(path: str, sha256: str, fmt: str = "skops") -> dict[str, Any]:
    return {"format": fmt, "artifacts": [{"path": path, "sha256": sha256}]}


def upload(api: TestClient, org: Org, data: bytes, *, account: str = DEV, who: str = "sam",
           fmt: str | None = None) -> str:
    params = {"format": fmt} if fmt else None
    response = api.post(f"/api/v1/accounts/{account}/artifacts", content=data, params=params,
                        headers={**auth(org.bearer(who)), "content-type": "application/octet-stream"})
    assert response.status_code == 201, response.text
    digest = response.json()["sha256"]
    assert digest == hashlib.sha256(data).hexdigest()
    return str(digest)


def group(org: Org, name: str = "churn", *, account: str = DEV, who: str = "lena",
          readers: tuple[str, ...] = ()) -> str:
    """The group, created the first time it is asked for."""
    with org.platform.bus.uow_factory(readonly=True) as uow:
        if uow.registry.get_group(account, name) is not None:
            return name
    org.bus.handle(c.CreateModelPackageGroup(account, name, readers=readers), org.identity(who))
    return name


def register(org: Org, group_name: str, *, account: str = DEV, who: str = "sam", data: bytes | None = None,
             run_started_by: str | None = None) -> Any:
    data = skops_model() if data is None else data
    store = org.platform.artifacts
    info = store.put(account, iter([data]))
    return org.bus.handle(c.RegisterModelPackage(account, group_name, "skops",
                                                 (c.ArtifactRef("model.skops", info.sha256),),
                                                 run_started_by=run_started_by), org.identity(who))


def publish_workspace(api: TestClient, org: Org) -> None:
    """team-workspace v1 in the shared-services catalog, published the first time it is asked for."""
    if api.get(f"/api/v1/accounts/{SHARED}/catalog/products/team-workspace/versions/1",
               headers=auth(org.bearer("priya"))).status_code == 200:
        return
    response = api.post(f"/api/v1/accounts/{SHARED}/catalog/portfolios/ml-admin/publish",
                        content=template("team-workspace"),
                        headers={**auth(org.bearer("priya")), "content-type": "application/gzip"})
    assert response.status_code == 201, response.text
