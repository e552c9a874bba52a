"""Separation of duties on approvals: nobody approves what they registered or whose run they
started; a principal whose role was just removed approves nothing, through a token or a live
session; and an approval racing the removal either committed before it or was refused."""

from __future__ import annotations

import threading
import uuid

import pytest
from fastapi.testclient import TestClient

from charter.domain import commands as c
from tests.conftest import EXAMPLE

from .conftest import Org, auth, refused
from .support import DEV, group, register

LENA_LEAD = "  - {principal: lena, account: ml-dev, role: lead-data-scientist}\n"
WITHOUT_LENA = EXAMPLE.read_text().replace(LENA_LEAD, "")


def _approve(api: TestClient, bearer: str, name: str, version: int) -> object:
    return api.post(f"/api/v1/accounts/{DEV}/registry/groups/{name}/packages/{version}/approve",
                    json={"comment": "ok"}, headers=auth(bearer))


@pytest.mark.parametrize("how", ["registered it", "started its run", "both"])
def test_nobody_approves_a_package_they_are_responsible_for(api: TestClient, org: Org, attack: object,
                                                            how: str) -> None:
    name = group(org, f"sod-{uuid.uuid4().hex[:6]}")
    who = "lena" if how in ("registered it", "both") else "sam"
    package = register(org, name, who=who, run_started_by="lena" if how != "registered it" else None)
    with attack() as seen:  # type: ignore[operator]
        assert refused(_approve(api, org.bearer("lena"), name, package.version), 403)["type"] == "PermissionDenied"
    assert seen.assert_audited(actor="lena").policy == "no-self-approval"


@pytest.mark.parametrize("credential", ["token", "session"])
def test_a_principal_whose_role_was_just_removed_approves_nothing(api: TestClient, org: Org, attack: object,
                                                                  credential: str) -> None:
    name = group(org, f"removed-{uuid.uuid4().hex[:6]}")
    package = register(org, name, who="sam")
    bearer = org.bearer("lena")
    if credential == "session":
        bearer = org.bus.handle(c.AssumeRole(DEV, "lead-data-scientist"), org.identity("lena")).bearer
    org.bus.handle(c.ApplyOrg(WITHOUT_LENA), org.admin)
    try:
        with attack() as seen:  # type: ignore[operator]
            refused(_approve(api, bearer, name, package.version), 401, 403)
        seen.assert_audited()
    finally:
        org.bus.handle(c.ApplyOrg(EXAMPLE.read_text()), org.admin)


def test_approvals_racing_a_role_removal_all_commit_before_it_or_are_refused(api: TestClient, org: Org,
                                                                              trail: object) -> None:
    name = group(org, f"race-{uuid.uuid4().hex[:6]}")
    versions = [register(org, name, who="sam", data=_model_variant(i)).version for i in range(8)]
    lena = org.identity("lena")
    mark = trail.head()  # type: ignore[attr-defined]
    outcomes: dict[int, str] = {}
    start = threading.Barrier(len(versions) + 1)

    def approve(version: int) -> None:
        start.wait()
        try:
            org.bus.handle(c.DecideModelPackage(DEV, name, version, "Approved"), lena)
            outcomes[version] = "approved"
        except Exception as error:  # noqa: BLE001 - the refusal's type is checked below
            outcomes[version] = type(error).__name__

    def remove() -> None:
        start.wait()
        org.bus.handle(c.ApplyOrg(WITHOUT_LENA), org.admin)

    threads = [threading.Thread(target=approve, args=(v,)) for v in versions] + [threading.Thread(target=remove)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert set(outcomes.values()) <= {"approved", "PermissionDenied"}, outcomes
        records = trail.since(mark)  # type: ignore[attr-defined]
        removal = min(r.seq for r in records if r.actor == "admin" and str(r.outcome) == "allowed")
        approvals = [r for r in records if r.action == "registry:ApproveModelPackage" and r.actor == "lena"]
        for r in approvals:  # allowed before the removal committed, denied after it
            assert (str(r.outcome) == "allowed") == (r.seq < removal), (r.seq, removal, str(r.outcome))
        with org.platform.bus.uow_factory(readonly=True) as uow:
            approved = {p.version for p in (uow.registry.get_package(DEV, name, v) for v in versions)
                        if p is not None and str(p.status) == "Approved"}
        assert approved == {v for v, o in outcomes.items() if o == "approved"}
    finally:
        org.bus.handle(c.ApplyOrg(EXAMPLE.read_text()), org.admin)


def _model_variant(i: int) -> bytes:
    """A distinct real model per version (so each package has its own digest)."""
    import numpy as np
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9 - i / 100], [0.9, 0.1]])
    return bytes(sio.dumps(LogisticRegression().fit(x, np.array([0, 1, 0, 1]))))
