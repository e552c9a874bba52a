"""Cross-account access to every object a request references: a principal with roles in ml-dev
only reaches nothing of another account — neither the object a request acts on, nor one it merely
names (a blob, a dataset, a product, a subscriber account)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.models import skops_model

from .conftest import Org, auth, refused
from .support import DEV, SHARED, group, package_body, upload

CENTRAL_ONLY = b"a blob that exists only in the central account"


@pytest.fixture(scope="module")
def central(api: TestClient, org: Org) -> dict[str, str]:
    group(org, "central-model", account=SHARED, who="mei")
    return {"blob": upload(api, org, CENTRAL_ONLY, account=SHARED, who="mei"),
            "model": upload(api, org, skops_model(), account=SHARED, who="mei")}


def _reads(blob: str) -> list[tuple[str, str]]:
    return [("GET", f"/api/v1/accounts/{SHARED}/registry/groups"),
            ("GET", f"/api/v1/accounts/{SHARED}/registry/groups/central-model"),
            ("GET", f"/api/v1/accounts/{SHARED}/registry/groups/central-model/packages"),
            ("GET", f"/api/v1/accounts/{SHARED}/artifacts/{blob}"),
            ("GET", f"/api/v1/accounts/{SHARED}/cards"),
            ("GET", f"/api/v1/accounts/{SHARED}/events/rules"),
            ("GET", f"/api/v1/accounts/{SHARED}/events/deliveries"),
            ("GET", f"/api/v1/accounts/{SHARED}/pipelines"),
            ("GET", f"/api/v1/accounts/{SHARED}/projects"),
            ("GET", "/api/v1/accounts/ml-prod/role-bindings"),
            ("GET", "/api/v1/accounts/data-governance/data/datasets"),
            ("GET", "/api/v1/audit/records"),
            ("POST", "/api/v1/audit/verify")]


@pytest.mark.parametrize("who", ["sam", "lena"])
@pytest.mark.parametrize("index", range(13))
def test_a_dev_principal_reads_nothing_of_another_account(api: TestClient, org: Org, central: dict[str, str],
                                                          attack: object, who: str, index: int) -> None:
    method, url = _reads(central["blob"])[index]
    with attack():  # type: ignore[operator]
        response = api.request(method, url, headers=auth(org.bearer(who)))
        if response.status_code == 200:  # a catalog-style listing filtered to what the caller may see
            assert response.json()["items"] == [], response.text
        else:
            refused(response, 403, 404)
        assert CENTRAL_ONLY not in response.content


@pytest.mark.parametrize("who", ["sam", "lena"])
def test_a_blob_of_another_account_cannot_be_read_or_registered_through_ones_own(
        api: TestClient, org: Org, central: dict[str, str], attack: object, who: str) -> None:
    name = group(org)
    with attack() as seen:  # type: ignore[operator]
        refused(api.get(f"/api/v1/accounts/{DEV}/artifacts/{central['blob']}", headers=auth(org.bearer(who))), 404)
        response = api.post(f"/api/v1/accounts/{DEV}/registry/groups/{name}/packages",
                            json=package_body("model.skops", central["model"]) if who == "sam" else
                            package_body("x.skops", central["blob"]), headers=auth(org.bearer(who)))
        refused(response, 400, 404)
    seen.assert_audited(actor=who)


@pytest.mark.parametrize(("method", "url", "body"), [
    ("POST", f"/api/v1/accounts/{SHARED}/registry/groups", {"name": "planted"}),
    ("POST", f"/api/v1/accounts/{SHARED}/registry/groups/central-model/packages/1/approve", {"comment": "x"}),
    ("POST", f"/api/v1/accounts/{SHARED}/cards/central-model/versions", {"document": {}, "summary": "x"}),
    ("POST", f"/api/v1/accounts/{SHARED}/catalog/portfolios", {"name": "planted"}),
    ("POST", "/api/v1/accounts/data-governance/data/datasets/bank/subscriptions",
     {"subscriber": "ml-prod", "reason": "on behalf of another account"}),
    ("POST", "/api/v1/tokens", {"principal": "mei"}),
    ("POST", "/api/v1/sessions", {"account": SHARED, "role": "ml-engineer"}),
    ("POST", "/api/v1/sessions", {"account": "ml-prod", "role": "governance-officer"}),
    ("POST", f"/api/v1/accounts/{DEV}/projects", {"name": "p", "product": "no-such-product", "parameters": {}}),
])
def test_a_dev_principal_changes_nothing_in_another_account(api: TestClient, org: Org, central: dict[str, str],
                                                            attack: object, method: str, url: str,
                                                            body: dict[str, object]) -> None:
    with attack() as seen:  # type: ignore[operator]
        refused(api.request(method, url, json=body, headers=auth(org.bearer("lena"))), 400, 403, 404)
    seen.assert_audited(actor="lena")
