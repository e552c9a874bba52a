"""Path traversal and absolute paths in every parameter that names a file, an artifact or a member.

The server derives every storage key itself; a name a caller gives is only ever a label inside a
package, a product or a pipeline's code, checked to be a relative, normal POSIX path. Each test
below sends every encoding of "somewhere else" in one such parameter.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.models import skops_model

from .conftest import Org, auth, refused
from .support import DEV, SHARED, TRAVERSALS, URIS, group, package_body, publish_workspace, upload


@pytest.mark.parametrize("path", TRAVERSALS + URIS)
def test_an_artifact_path_outside_the_package_is_refused_and_audited(
        api: TestClient, org: Org, attack: object, path: str) -> None:
    name = group(org)
    digest = upload(api, org, skops_model(), fmt="skops")
    with attack() as seen:  # type: ignore[operator]
        response = api.post(f"/api/v1/accounts/{DEV}/registry/groups/{name}/packages",
                            json=package_body(path, digest), headers=auth(org.bearer("sam")))
        error = refused(response, 400)
    assert error["type"] == "ValidationError"
    record = seen.assert_audited(actor="sam")
    assert record.details["error"] == "ValidationError"


@pytest.mark.parametrize("path", TRAVERSALS + URIS)
def test_a_product_file_outside_the_version_is_not_served(api: TestClient, org: Org, attack: object,
                                                          path: str) -> None:
    publish_workspace(api, org)
    base = f"/api/v1/accounts/{SHARED}/catalog/products/team-workspace/versions/1/files/"
    assert api.get(base + "product.yaml", headers=auth(org.bearer("priya"))).status_code == 200
    # The client removes dot segments it can see, so they are sent encoded as well (%2E).
    spellings = {quote(path, safe="").replace(".", "%2E")}
    if not any(part in (".", "..") for part in path.split("/")):
        spellings |= {quote(path, safe=""), quote(path, safe="/%\\#?")}
    with attack():  # type: ignore[operator]
        for url in sorted(base + s for s in spellings):
            response = api.get(url, headers=auth(org.bearer("priya")))
            refused(response, 400, 404)
            assert b"root:" not in response.content


@pytest.mark.parametrize("folder", TRAVERSALS[:-1] + URIS)
def test_a_template_folder_outside_the_archive_is_refused_and_audited(api: TestClient, org: Org,
                                                                      attack: object, folder: str) -> None:
    from tests.unit.catalog_support import template
    with attack() as seen:  # type: ignore[operator]
        response = api.post(f"/api/v1/accounts/{SHARED}/catalog/portfolios/ml-admin/publish",
                            params={"path": folder, "repository": "https://git.example/t.git", "ref": "main",
                                    "commit": "c" * 40},
                            content=template("team-workspace"),
                            headers={**auth(org.bearer("priya")), "content-type": "application/gzip"})
        refused(response, 400)
    seen.assert_audited(actor="priya")


@pytest.mark.parametrize("digest", ["../" * 8 + "etc/passwd", "..%2f..%2fetc%2fpasswd", "A" * 64,
                                    "0" * 63 + "/", "0" * 64 + "/../x", "%30" * 64, "0" * 64 + "%00",
                                    "0" * 64 + "#x", "\uff10" * 64, "sha256:" + "0" * 64])
def test_an_artifact_digest_that_is_not_a_digest_reaches_no_file(api: TestClient, org: Org, attack: object,
                                                                 digest: str) -> None:
    name = group(org)
    with attack():  # type: ignore[operator]
        response = api.get(f"/api/v1/accounts/{DEV}/artifacts/{quote(digest, safe='')}",
                           headers=auth(org.bearer("lena")))
        refused(response, 400, 404)
        response = api.post(f"/api/v1/accounts/{DEV}/registry/groups/{name}/packages",
                            json=package_body("model.skops", digest), headers=auth(org.bearer("sam")))
        refused(response, 400)


@pytest.mark.parametrize("segment", ["..", "%2e%2e", "..%2f..%2fetc", "%252e%252e", "ml-dev%2f..%2fml-prod",
                                     "ml-dev%00", "ML-DEV", "ml-dev\\..\\ml-prod", "\uff0e\uff0e",
                                     "ml-dev%23", "-", "a" * 64])
def test_an_account_segment_that_is_not_a_name_reaches_no_store(api: TestClient, org: Org, attack: object,
                                                                 segment: str) -> None:
    with attack():  # type: ignore[operator]
        response = api.post(f"/api/v1/accounts/{quote(segment, safe='%')}/artifacts", content=b"x",
                            headers={**auth(org.bearer("sam")), "content-type": "application/octet-stream"})
        refused(response)


@pytest.mark.parametrize("name", ["../bank", "..%2fbank", "/etc/passwd", "bank/../../x", "bank\\..\\x",
                                  "bank%00", "\uff0e\uff0e", "file:///etc/passwd", "s3://b/k", ""])
def test_a_dataset_name_that_is_not_a_name_is_refused_and_audited(api: TestClient, org: Org, attack: object,
                                                                  name: str) -> None:
    with attack() as seen:  # type: ignore[operator]
        response = api.post("/api/v1/accounts/data-governance/data/datasets", params={"name": name},
                            content=b"a,b\n1,2\n",
                            headers={**auth(org.bearer("diego")), "content-type": "application/octet-stream"})
        refused(response, 400)
    seen.assert_audited(actor="diego")

