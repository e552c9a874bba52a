"""Archives from callers: template archives (catalog publish) and pipeline code (pipeline create).

Each hostile archive is otherwise valid (it holds a good product.yaml or pipeline.yaml), so the only
reason to refuse it is the member under test: a name that escapes (every traversal encoding), a
symbolic or hard link (to inside or outside), a device, a FIFO, or a PAX header that renames a
member after the fact. Nothing of a refused archive is stored.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.pipelines_support import CODE, DEFINITION
from tests.unit.catalog_support import special, template_files

from .conftest import Org, auth, refused
from .support import DEV, SHARED, TRAVERSALS

Extra = Callable[[tarfile.TarFile], None]
# A tar header cannot carry a NUL (the name field ends at the first one), so those are left out.
ESCAPES = [t for t in TRAVERSALS if t not in ("", ".", "a/./b", "a//b") and "\x00" not in t] + [
    "./../../escape.sh", "seed/../../../root/.bashrc", "seed/../../../../tmp/x",
]


def _pack(files: dict[str, bytes], extra: Extra | None = None, fmt: int = tarfile.GNU_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=fmt) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra is not None:
            extra(tar)
    return buffer.getvalue()


def _pax_renamed(real: str, claimed: str) -> Extra:
    """A member stored as ``claimed`` whose PAX header says its path is ``real``."""
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(claimed)
        info.size = 4
        info.pax_headers = {"path": real}
        tar.addfile(info, io.BytesIO(b"evil"))
    return add


def _links_and_specials() -> dict[str, Extra]:
    return {
        "symlink to /etc/passwd": special("passwd", tarfile.SYMTYPE, "/etc/passwd"),
        "symlink to ..": special("up", tarfile.SYMTYPE, "../../.."),
        "symlink to //proc/self/root": special("root", tarfile.SYMTYPE, "//proc/self/root"),
        "symlink inside the archive": special("again.md", tarfile.SYMTYPE, "README.md"),
        "symlink folder then a file through it": lambda tar: (
            special("d", tarfile.SYMTYPE, "/tmp")(tar), _pack_into(tar, "d/x", b"x")),
        "hardlink to /etc/shadow": special("shadow", tarfile.LNKTYPE, "/etc/shadow"),
        "hardlink inside the archive": special("hard.md", tarfile.LNKTYPE, "README.md"),
        "hardlink escaping": special("hard", tarfile.LNKTYPE, "../../etc/passwd"),
        "character device": special("tty", tarfile.CHRTYPE),
        "block device": special("sda", tarfile.BLKTYPE),
        "fifo": special("pipe", tarfile.FIFOTYPE),
        "pax path escaping": _pax_renamed("../../etc/cron.d/x", "harmless.txt"),
        "pax absolute path": _pax_renamed("/etc/cron.d/x", "harmless2.txt"),
        "gnu long name escaping": lambda tar: _pack_into(tar, "a/" * 60 + "../" * 70 + "etc/passwd", b"x"),
    }


def _pack_into(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


WORKSPACE = template_files("team-workspace")
PIPELINE = {"pipeline.yaml": DEFINITION.encode(), **CODE}


def _publish(api: TestClient, org: Org, body: bytes) -> object:
    return api.post(f"/api/v1/accounts/{SHARED}/catalog/portfolios/ml-admin/publish", content=body,
                    headers={**auth(org.bearer("priya")), "content-type": "application/gzip"})


def _create_pipeline(api: TestClient, org: Org, body: bytes, name: str = "tiny") -> object:
    return api.post(f"/api/v1/accounts/{DEV}/pipelines/{name}", content=body,
                    headers={**auth(org.bearer("lena")), "content-type": "application/gzip"})


@pytest.mark.parametrize("member", ESCAPES)
def test_a_template_member_that_escapes_is_refused_and_nothing_is_stored(
        api: TestClient, org: Org, attack: object, member: str) -> None:
    with attack() as seen:  # type: ignore[operator]
        refused(_publish(api, org, _pack({**WORKSPACE, member: b"#!/bin/sh\nid\n"})), 400)
    seen.assert_audited(actor="priya")


@pytest.mark.parametrize("kind", sorted(_links_and_specials()))
def test_a_template_with_a_link_device_or_renamed_member_is_refused(
        api: TestClient, org: Org, attack: object, kind: str) -> None:
    fmt = tarfile.PAX_FORMAT if kind.startswith("pax") else tarfile.GNU_FORMAT
    with attack() as seen:  # type: ignore[operator]
        refused(_publish(api, org, _pack(WORKSPACE, _links_and_specials()[kind], fmt)), 400)
    seen.assert_audited(actor="priya")


@pytest.mark.parametrize("member", ESCAPES)
def test_pipeline_code_with_a_member_that_escapes_is_refused_and_nothing_is_stored(
        api: TestClient, org: Org, attack: object, member: str) -> None:
    with attack() as seen:  # type: ignore[operator]
        refused(_create_pipeline(api, org, _pack({**PIPELINE, member: b"import os\n"})), 400)
    seen.assert_audited(actor="lena")


@pytest.mark.parametrize("kind", sorted(_links_and_specials()))
def test_pipeline_code_with_a_link_device_or_renamed_member_is_refused(
        api: TestClient, org: Org, attack: object, kind: str) -> None:
    fmt = tarfile.PAX_FORMAT if kind.startswith("pax") else tarfile.GNU_FORMAT
    files = {**PIPELINE, "README.md": b"read me"}
    with attack() as seen:  # type: ignore[operator]
        refused(_create_pipeline(api, org, _pack(files, _links_and_specials()[kind], fmt)), 400)
    seen.assert_audited(actor="lena")


@pytest.mark.parametrize("reference", [
    "dataset:../../etc/passwd", "dataset:file:///etc/passwd", "dataset:s3://bucket/key", "file:///etc/passwd",
    "dataset:/etc/passwd", "param:../x", "step:../../prepare.table", "http://127.0.0.1/x",
    "dataset:..%2f..%2fetc", "dataset:bank\\..\\x",
])
def test_a_pipeline_input_that_names_a_path_or_uri_is_refused(api: TestClient, org: Org, attack: object,
                                                               reference: str) -> None:
    definition = DEFINITION.replace('inputs: {n: "param:n"}', f'inputs: {{n: "{reference}"}}')
    with attack() as seen:  # type: ignore[operator]
        refused(_create_pipeline(api, org, _pack({**PIPELINE, "pipeline.yaml": definition.encode()})), 400)
    seen.assert_audited(actor="lena")


@pytest.mark.parametrize("entry_point", ["os:system", "subprocess:run", "builtins:eval", "../steps:prepare",
                                         "/tmp/steps:prepare", "steps/../../x:prepare", "pickle:loads"])
def test_a_pipeline_entry_point_outside_its_own_code_is_refused(api: TestClient, org: Org, attack: object,
                                                                entry_point: str) -> None:
    definition = DEFINITION.replace("entry_point: steps:prepare", f"entry_point: {entry_point}")
    with attack() as seen:  # type: ignore[operator]
        refused(_create_pipeline(api, org, _pack({**PIPELINE, "pipeline.yaml": definition.encode()})), 400)
    seen.assert_audited(actor="lena")


def test_the_same_pipeline_archive_without_the_hostile_member_is_accepted(api: TestClient, org: Org) -> None:
    """The control: the archives above are refused for their one bad member, not for the rest."""
    response = _create_pipeline(api, org, _pack(PIPELINE), name="control")
    assert response.status_code == 201, response.text  # type: ignore[attr-defined]
    assert _publish(api, org, _pack(WORKSPACE)).status_code == 201  # type: ignore[attr-defined]
