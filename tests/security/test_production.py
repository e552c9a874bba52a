"""Production endpoints take a new configuration only from the deployment execution that releases
it, after its production approvals: an ML engineer of the production account (or the pipeline's
own service principal, with its own token) deploying an approved package there by hand is
refused, and so is an execution that has not been approved yet. Found by the lifecycle state
machine (``deploy_to_production_by_hand``): before, either reached production with no governance
officer and no approved card."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from charter.domain import commands as c
from charter.domain.identity import Identity
from charter.errors import PermissionDenied
from charter.services.handlers.deployments import EXECUTION_PREFIX, POLICY_PRODUCTION_RELEASE
from tests.deployments_support import Road
from tests.endpoints_support import publish

from .conftest import Org, auth, refused

PROD = "ml-prod"


@pytest.fixture(scope="module")
def approved(org: Org) -> str:
    """A centrally approved package whose group admits the deployment accounts."""
    return publish(org.bus, org.identity("promotion-bot"), org.identity("mei"))


@pytest.mark.parametrize("who", ["mei", "deployment-bot"])
def test_nobody_deploys_an_approved_package_to_production_by_hand(api: TestClient, org: Org, attack: object,
                                                                  approved: str, who: str) -> None:
    bearer = org.bearer(who)
    with attack() as seen:  # type: ignore[operator]
        error = refused(api.post(f"/api/v1/accounts/{PROD}/endpoints/churn", json={"variants": [{"package": approved}]},
                                 headers=auth(bearer)), 403)
    assert error["type"] == "PermissionDenied" and error["details"]["policy"] == POLICY_PRODUCTION_RELEASE
    assert seen.assert_audited(actor=who).policy == POLICY_PRODUCTION_RELEASE


def test_the_same_package_still_goes_to_a_test_account_by_hand(api: TestClient, org: Org, approved: str) -> None:
    response = api.post("/api/v1/accounts/ml-test/endpoints/by-hand", json={"variants": [{"package": approved}]},
                        headers=auth(org.bearer("mei")))
    assert response.status_code == 202, response.text


def test_an_execution_not_yet_approved_for_production_releases_nothing_there(org: Org, attack: object) -> None:
    road = Road(org.bus, org.identity)
    road.launch()
    execution = road.start(road.central_package())
    runner = Identity("deployment-bot", f"{EXECUTION_PREFIX}{execution.id}", principal_kind="service")
    with attack() as seen, pytest.raises(PermissionDenied) as refusal:  # type: ignore[operator]
        org.bus.handle(c.DeployEndpoint(PROD, "churn-deploy", (c.VariantSpec(execution.package),),
                                        reason="early"), runner)
    assert refusal.value.details["policy"] == POLICY_PRODUCTION_RELEASE
    assert "not at its production release" in refusal.value.message
    seen.assert_audited(actor="deployment-bot")
