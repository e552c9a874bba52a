"""Oversized bodies, deeply nested JSON and huge page sizes: refused with 4xx before any work."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .conftest import MAX_REQUEST_BYTES, Org, auth, refused
from .support import DEV


def _nested(depth: int, open_: str, close: str, leaf: str = "1") -> str:
    return open_ * depth + leaf + close * depth


@pytest.mark.parametrize("route", ["/api/v1/org/apply", f"/api/v1/accounts/{DEV}/registry/groups",
                                   f"/api/v1/accounts/{DEV}/cards/churn/versions", "/api/v1/tokens"])
@pytest.mark.parametrize("how", ["content-length", "chunked", "lying content-length"])
def test_an_oversized_json_body_is_too_large(api: TestClient, org: Org, attack: object, route: str,
                                             how: str) -> None:
    body = b'{"name": "' + b"x" * (MAX_REQUEST_BYTES + 1) + b'"}'
    headers = {**auth(org.bearer("lena")), "content-type": "application/json"}
    with attack():  # type: ignore[operator]
        if how == "chunked":
            response = api.post(route, content=iter([body[:1000], body[1000:]]), headers=headers)
        elif how == "lying content-length":
            response = api.post(route, content=body, headers={**headers, "content-length": "10"})
        else:
            response = api.post(route, content=body, headers=headers)
        assert 400 <= response.status_code < 500, response.status_code


@pytest.mark.parametrize("value", ["-1", "99999999999999999999", "abc", "1e9", "0x10"])
def test_a_content_length_that_is_not_a_small_number_is_refused(api: TestClient, org: Org, value: str) -> None:
    response = api.post(f"/api/v1/accounts/{DEV}/registry/groups", content=b'{"name": "x"}',
                        headers={**auth(org.bearer("lena")), "content-type": "application/json",
                                 "content-length": value})
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("depth", [200, 1000, 5000, 20000])
@pytest.mark.parametrize("shape", ["arrays", "objects"])
@pytest.mark.parametrize("field", ["document", "sample_payload"])
def test_deeply_nested_json_is_a_validation_error(api: TestClient, org: Org, attack: object, depth: int,
                                                  shape: str, field: str) -> None:
    inner = _nested(depth, "[", "]") if shape == "arrays" else _nested(depth, '{"a":', "}")
    if field == "document":
        route, body = f"/api/v1/accounts/{DEV}/cards/churn/versions", '{"document": ' + inner + "}"
    else:
        route = f"/api/v1/accounts/{DEV}/registry/groups/churn/packages"
        body = '{"format": "skops", "artifacts": [], "sample_payload": ' + inner + "}"
    if len(body) > MAX_REQUEST_BYTES:
        pytest.skip("over the body limit: refused as too large instead")
    with attack():  # type: ignore[operator]
        refused(api.post(route, content=body.encode(), headers={**auth(org.bearer("lena")),
                                                                "content-type": "application/json"}))


@pytest.mark.parametrize("limit", ["101", "1000000", "99999999999999999999999", "0", "-1", "1e3", "NaN", ""])
@pytest.mark.parametrize("route", ["/api/v1/accounts", "/api/v1/principals", "/api/v1/audit/records",
                                   f"/api/v1/accounts/{DEV}/registry/groups", "/api/v1/tokens"])
def test_a_page_size_over_the_maximum_or_not_a_count_is_refused(api: TestClient, org: Org, limit: str,
                                                                route: str) -> None:
    assert refused(api.get(route, params={"limit": limit}, headers=auth(org.bearer("admin"))), 400)


@pytest.mark.parametrize("cursor", ["x" * 513, "../../", "' OR 1=1 --", "eyJhIjoxfQ", "%00", "\uff0e"])
def test_a_forged_or_huge_cursor_is_refused(api: TestClient, org: Org, cursor: str) -> None:
    refused(api.get("/api/v1/accounts", params={"cursor": cursor}, headers=auth(org.bearer("admin"))), 400)
