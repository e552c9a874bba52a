"""The subscription state machine, grants and the dataset model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from charter.domain.datasets import (
    Column,
    DataFormat,
    DatasetVersion,
    Subscription,
    SubscriptionStatus,
    data_format,
)
from charter.errors import InvalidTransition, ValidationError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
S = SubscriptionStatus


def _sub(**kw: object) -> Subscription:
    args: dict[str, object] = {"id": "0" * 32, "account": "data-governance", "dataset": "bank-marketing",
                               "subscriber": "ml-dev", "requested_by": "sam", "reason": "churn model",
                               "created_at": NOW}
    args.update(kw)
    return Subscription(**args)  # type: ignore[arg-type]


def test_a_subscription_starts_pending_and_grants_nothing() -> None:
    sub = _sub()
    assert sub.status is S.PENDING and sub.grant is None
    assert str(sub.crn) == "crn:charter:data-governance:data:subscription/" + "0" * 32


def test_a_subscription_needs_a_reason() -> None:
    with pytest.raises(ValidationError) as refused:
        _sub(reason="  ")
    assert refused.value.details["field"] == "reason"


def test_approval_gives_an_active_grant_until_it_expires() -> None:
    approved = _sub().transition(S.APPROVED, "diego", "ok", NOW, expires_at=NOW + timedelta(days=30))
    grant = approved.grant
    assert grant is not None and approved.decided_by == "diego"
    assert grant.active(NOW + timedelta(days=29)) and not grant.active(NOW + timedelta(days=30))
    assert grant.admits("ml-dev", None, NOW) and not grant.admits("ml-test", None, NOW)


def test_a_revoked_grant_is_no_longer_active() -> None:
    revoked = _sub().transition(S.APPROVED, "diego", "", NOW).transition(S.REVOKED, "diego", "", NOW)
    assert revoked.grant is not None and not revoked.grant.active(NOW)
    assert [h.status for h in revoked.history] == [S.APPROVED, S.REVOKED]


def test_a_project_grant_admits_only_that_project() -> None:
    grant = _sub(project="churn").transition(S.APPROVED, "diego", "", NOW).grant
    assert grant is not None and grant.scope == "ml-dev/churn"
    assert grant.admits("ml-dev", "churn", NOW) and not grant.admits("ml-dev", None, NOW)
    assert not grant.admits("ml-dev", "fraud", NOW)


@pytest.mark.parametrize(("start", "to"), [
    ([], S.REVOKED), ([], S.PENDING), ([S.REJECTED], S.APPROVED), ([S.APPROVED], S.APPROVED),
    ([S.APPROVED, S.REVOKED], S.APPROVED), ([S.APPROVED], S.REJECTED)])
def test_only_pending_to_decided_and_approved_to_revoked_are_allowed(start: list[S], to: S) -> None:
    sub = _sub()
    for status in start:
        sub = sub.transition(status, "diego", "", NOW)
    with pytest.raises(InvalidTransition):
        sub.transition(to, "diego", "", NOW)


def test_an_expiry_must_lie_in_the_future() -> None:
    with pytest.raises(ValidationError):
        _sub().transition(S.APPROVED, "diego", "", NOW, expires_at=NOW)


def test_a_version_refuses_duplicate_column_names() -> None:
    with pytest.raises(ValidationError, match="duplicate"):
        DatasetVersion("data-governance", "d", 1, DataFormat.CSV, "a" * 64, 10,
                       (Column("x", "int64"), Column("x", "int64")), 1, "diego", NOW)


def test_an_unknown_format_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValidationError, match="csv or parquet"):
        data_format("xlsx")
