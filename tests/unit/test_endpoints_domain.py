"""The endpoint model: requests checked against a signature, weighted variants, revisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from charter.domain.endpoints import (
    Endpoint,
    EndpointStatus,
    Revision,
    RevisionStatus,
    Variant,
    choose_variant,
    default_variant_name,
    new_endpoint,
    parse_rows,
)
from charter.domain.registry import ColumnSpec
from charter.errors import InvalidTransition, ValidationError

NOW = datetime(2026, 12, 1, tzinfo=UTC)
COLUMNS = (ColumnSpec("age", "double"), ColumnSpec("balance", "double"))
PACKAGE = "crn:charter:ml-shared-services:registry:model-package/churn-ml-dev/1"


def variant(name: str = "a", weight: float = 1.0, package: str = PACKAGE) -> Variant:
    return Variant(name, package, weight, "skops", "0" * 64, COLUMNS)


def revision(number: int, *variants: Variant) -> Revision:
    return Revision(number, variants or (variant(),), 1, 0.0, "mei", NOW, f"r{number}")


def endpoint_serving(*numbers: int) -> Endpoint:
    """An endpoint whose revisions ``numbers`` rolled out in order, each successfully."""
    e = new_endpoint("ml-test", "churn", revision(1))
    e = e.finish(1, True, None, NOW)
    for n in numbers[1:]:
        e, _ = e.with_revision(revision(n))
        e = e.finish(n, True, None, NOW)
    return e


def test_instances_in_signature_order_become_rows() -> None:
    assert parse_rows({"instances": [[30, 1.5], [40, 2]]}, COLUMNS) == [[30.0, 1.5], [40.0, 2.0]]


def test_columns_are_put_in_signature_order() -> None:
    assert parse_rows({"inputs": {"balance": [1.5], "age": [30]}}, COLUMNS) == [[30.0, 1.5]]


def test_an_unknown_column_is_named() -> None:
    with pytest.raises(ValidationError, match="unknown column colour"):
        parse_rows({"inputs": {"age": [1], "balance": [1], "colour": [1]}}, COLUMNS)


def test_a_missing_column_is_named() -> None:
    with pytest.raises(ValidationError, match="missing column balance"):
        parse_rows({"inputs": {"age": [1]}}, COLUMNS)


def test_a_row_of_the_wrong_width_is_named_with_the_expected_columns() -> None:
    with pytest.raises(ValidationError, match=r"instances\[1\] has 3 values; the signature has 2 columns"):
        parse_rows({"instances": [[1, 2], [1, 2, 3]]}, COLUMNS)


def test_a_non_numeric_value_is_named_by_position_and_column() -> None:
    with pytest.raises(ValidationError, match=r"instances\[0\]\[1\] \(balance\): expected a number, got the string 'x'"):
        parse_rows({"instances": [[1, "x"]]}, COLUMNS)


def test_booleans_and_non_finite_numbers_are_not_numbers() -> None:
    with pytest.raises(ValidationError, match="got a boolean"):
        parse_rows({"instances": [[True, 1]]}, COLUMNS)
    with pytest.raises(ValidationError, match="finite"):
        parse_rows({"instances": [[float("nan"), 1]]}, COLUMNS)


def test_ragged_columns_are_refused() -> None:
    with pytest.raises(ValidationError, match="ragged columns"):
        parse_rows({"inputs": {"age": [1, 2], "balance": [1]}}, COLUMNS)


def test_without_a_signature_rows_must_share_the_first_rows_width() -> None:
    assert parse_rows({"instances": [[1, 2, 3]]}, None) == [[1.0, 2.0, 3.0]]
    with pytest.raises(ValidationError, match="instances\\[0\\] has 3"):
        parse_rows({"instances": [[1, 2, 3], [1]]}, None)


def test_an_empty_request_is_refused() -> None:
    with pytest.raises(ValidationError, match="empty"):
        parse_rows({"instances": []}, COLUMNS)
    with pytest.raises(ValidationError, match="exactly one of"):
        parse_rows({}, COLUMNS)


def test_too_many_rows_are_refused_with_the_limit() -> None:
    with pytest.raises(ValidationError, match="too many rows: 3 \\(at most 2\\)"):
        parse_rows({"instances": [[1, 2]] * 3}, COLUMNS, max_rows=2)


def test_variants_take_their_weights_share_of_the_draws() -> None:
    a, b = variant("a", 3), variant("b", 1)
    picks = [choose_variant((a, b), i / 1000).name for i in range(1000)]
    assert picks.count("a") == 750 and picks.count("b") == 250


def test_a_weight_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="positive"):
        variant("a", 0)


def test_variant_names_must_be_unique_in_a_revision() -> None:
    with pytest.raises(ValidationError, match="unique"):
        revision(1, variant("a"), variant("a"))


def test_the_default_variant_name_comes_from_the_package() -> None:
    assert default_variant_name(PACKAGE) == "churn-ml-dev-v1"


def test_a_new_endpoint_is_creating_until_its_first_revision_is_healthy() -> None:
    e = new_endpoint("ml-test", "churn", revision(1))
    assert e.status is EndpointStatus.CREATING and e.serving_revision is None
    assert e.finish(1, True, None, NOW).status is EndpointStatus.IN_SERVICE


def test_a_failed_update_keeps_the_serving_revision() -> None:
    e, _ = endpoint_serving(1).with_revision(revision(2))
    assert e.status is EndpointStatus.UPDATING
    failed = e.finish(2, False, "the model failed to load", NOW)
    assert failed.serving_revision == 1 and failed.revision(2).status is RevisionStatus.FAILED
    assert failed.status is EndpointStatus.IN_SERVICE and failed.revision(2).status_reason == "the model failed to load"


def test_a_new_revision_supersedes_one_still_rolling_out() -> None:
    e, _ = endpoint_serving(1).with_revision(revision(2))
    e, superseded = e.with_revision(revision(3))
    assert superseded == [2] and e.revision(2).status is RevisionStatus.SUPERSEDED
    with pytest.raises(InvalidTransition):
        e.finish(2, True, None, NOW)


def test_rollback_goes_to_the_newest_healthy_revision_before_the_serving_one() -> None:
    e, _ = endpoint_serving(1, 2).with_revision(revision(3))
    e = e.finish(3, False, "never healthy", NOW)
    assert e.rollback_source().number == 1


def test_an_endpoint_with_one_configuration_has_nothing_to_roll_back_to() -> None:
    with pytest.raises(InvalidTransition, match="no configuration before revision 1"):
        endpoint_serving(1).rollback_source()
