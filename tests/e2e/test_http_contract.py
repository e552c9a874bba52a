"""The REST contract over real HTTP: paging, limits, and one error shape for every failure."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from charter.client.client import Client
from charter.errors import NotFound, TooLarge, ValidationError, error_from_payload

from .support import MAX_REQUEST_BYTES, ServerProcess

STATUS_OF_TYPE = {"ValidationError": 400, "Unauthenticated": 401, "PermissionDenied": 403, "NotFound": 404,
                  "Conflict": 409, "InvalidTransition": 409, "TooLarge": 413}


@pytest.fixture
def http(server: ServerProcess, admin_token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.url}/api/v1",
                      headers={"authorization": f"Bearer {admin_token}"}) as client:
        yield client


def _pages(http: httpx.Client, path: str, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = http.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([item["name"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def _assert_error_shape(response: httpx.Response, expected_type: str) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "details"}
    assert body["error"]["type"] == expected_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert response.status_code == STATUS_OF_TYPE[expected_type]
    assert response.headers["content-type"].startswith("application/json")
    return body["error"]  # type: ignore[no-any-return]


def test_accounts_page_through_with_a_cursor(http: httpx.Client, admin: Client) -> None:
    pages = _pages(http, "/accounts", limit=2)

    assert [len(p) for p in pages] == [2, 2, 2]
    assert [name for page in pages for name in page] == sorted(a.name for a in admin.accounts())


def test_principals_page_through_with_a_cursor(http: httpx.Client, admin: Client) -> None:
    pages = _pages(http, "/principals", limit=2)

    names = [name for page in pages for name in page]
    assert all(len(p) == 2 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 2
    assert names == sorted(set(names))
    assert names == [p.name for p in admin.principals()]
    assert {"admin", "lena", "promotion-bot"} <= set(names)


def test_invalid_cursor_is_a_validation_error(http: httpx.Client) -> None:
    response = http.get("/accounts", params={"cursor": "not!a!cursor"})

    error = _assert_error_shape(response, "ValidationError")
    assert error["details"] == {"field": "cursor"}
    assert isinstance(error_from_payload(response.status_code, response.json()), ValidationError)


def test_limit_of_zero_is_a_validation_error(http: httpx.Client) -> None:
    _assert_error_shape(http.get("/principals", params={"limit": 0}), "ValidationError")


def test_oversized_body_is_too_large(admin: Client) -> None:
    with pytest.raises(TooLarge) as refused:
        admin.apply("organization: acme\n#" + "x" * MAX_REQUEST_BYTES, filename="huge.yaml")

    assert refused.value.details["limit"] == MAX_REQUEST_BYTES


def test_oversized_body_gets_the_error_shape_with_413(http: httpx.Client) -> None:
    response = http.post("/org/apply", content=b"{" + b" " * (MAX_REQUEST_BYTES + 1) + b"}",
                         headers={"content-type": "application/json"})

    _assert_error_shape(response, "TooLarge")


def test_oversized_chunked_body_is_too_large(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"document": "'
        for _ in range(MAX_REQUEST_BYTES // 8192 + 2):
            yield b"x" * 8192
        yield b'"}'

    response = http.post("/org/apply", content=chunks(), headers={"content-type": "application/json"})

    _assert_error_shape(response, "TooLarge")


def test_unknown_route_gets_the_error_shape_with_404(server: ServerProcess) -> None:
    response = httpx.get(f"{server.url}/api/v1/no/such/route")

    _assert_error_shape(response, "NotFound")


def test_unknown_route_outside_the_api_gets_the_error_shape_with_404(server: ServerProcess) -> None:
    _assert_error_shape(httpx.get(f"{server.url}/definitely-not-here"), "NotFound")


def test_unknown_account_is_not_found(admin: Client) -> None:
    with pytest.raises(NotFound) as missing:
        admin.account("ml-nowhere")

    assert missing.value.details["account"] == "ml-nowhere"


def test_missing_credentials_get_the_error_shape_with_401(server: ServerProcess) -> None:
    _assert_error_shape(httpx.get(f"{server.url}/api/v1/whoami"), "Unauthenticated")


def test_denial_gets_the_error_shape_with_403_naming_the_policy(
        server: ServerProcess, persona_tokens: dict[str, str]) -> None:
    response = httpx.get(f"{server.url}/api/v1/audit/records",
                         headers={"authorization": f"Bearer {persona_tokens['sam']}"})

    error = _assert_error_shape(response, "PermissionDenied")
    assert error["details"]["policy"] == "default-deny"  # type: ignore[index]


def test_unknown_resource_gets_the_error_shape_with_404(http: httpx.Client) -> None:
    _assert_error_shape(http.get("/principals/nobody"), "NotFound")


def test_invalid_body_gets_the_error_shape_with_400_naming_the_field(http: httpx.Client) -> None:
    response = http.post("/tokens", json={"principal": "sam", "expires_in_seconds": "soon"})

    error = _assert_error_shape(response, "ValidationError")
    assert [p["field"] for p in error["details"]["problems"]] == ["expires_in_seconds"]  # type: ignore[index]


def test_unparseable_json_body_gets_the_error_shape_with_400(http: httpx.Client) -> None:
    response = http.post("/tokens", content=b"{not json", headers={"content-type": "application/json"})

    _assert_error_shape(response, "ValidationError")


def test_unknown_body_field_is_refused(http: httpx.Client) -> None:
    response = http.post("/tokens", json={"principal": "sam", "admin": True})

    _assert_error_shape(response, "ValidationError")


def test_state_conflict_gets_the_error_shape_with_409(http: httpx.Client, admin: Client) -> None:
    issued = admin.create_token("sam", expires_in_seconds=3600)
    admin.revoke_token(issued.token.id)

    _assert_error_shape(http.delete(f"/tokens/{issued.token.id}"), "InvalidTransition")


def test_wrong_method_gets_the_error_shape(http: httpx.Client) -> None:
    response = http.delete("/whoami")

    body = response.json()
    assert response.status_code == 405
    assert set(body["error"]) == {"type", "message", "details"}


def test_every_response_carries_a_request_id(http: httpx.Client) -> None:
    ok = http.get("/whoami")
    failed = http.get("/principals/nobody")

    assert len(ok.headers["x-request-id"]) == 32
    assert len(failed.headers["x-request-id"]) == 32
    assert ok.headers["x-request-id"] != failed.headers["x-request-id"]


def test_health_needs_no_credentials(server: ServerProcess) -> None:
    with Client(server.url) as anonymous:
        assert anonymous.health().status == "ok"
