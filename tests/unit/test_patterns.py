"""Event patterns: EventBridge's documented examples, every matcher, and validation naming the right path."""

from __future__ import annotations

import json
from enum import IntEnum, StrEnum
from typing import Any

import pytest

from charter.domain.events import Event
from charter.domain.patterns import (
    MAX_DEPTH,
    MAX_MATCHERS,
    MAX_PATTERN_CHARS,
    ROOT,
    Pattern,
    compile_pattern,
    validate_pattern,
)
from charter.domain.plan import Problem
from charter.errors import ValidationError


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return compile_pattern(pattern).matches(event)


def problems(pattern: object) -> list[tuple[str, str]]:
    return [(p.field, p.reason) for p in validate_pattern(pattern)]


# --- The examples of the EventBridge user guide and of its engine, Event Ruler -------------------

EC2_TERMINATED = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "111122223333",
    "time": "2017-12-22T18:43:48Z",
    "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"},
}

EC2_RUNNING = {
    "version": "0",
    "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "012345679012",
    "time": "2017-10-02T16:24:49Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
    "detail": {
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
        "instance-id": "i-000000aaaaaa00000",
        "state": "running",
    },
}

AUTOSCALING = {
    "version": "0",
    "id": "3e3c153a-8339-4e30-8c35-687ebef853fe",
    "detail-type": "EC2 Instance Launch Successful",
    "source": "aws.autoscaling",
    "account": "123456789012",
    "time": "2015-11-11T21:31:47Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {"eventVersion": "", "responseElements": None},
}

MACIE = {
    "detail-type": "Macie Alert",
    "source": "aws.macie",
    "resources": [
        "arn:aws:macie:us-east-1:123456789012:trigger/trigger_id/alert/alert_id",
        "arn:aws:macie:us-east-1:123456789012:trigger/trigger_id",
    ],
    "detail": {
        "notification-type": "ALERT_CREATED",
        "tags": ["Custom_Alert", "Insider"],
        "risk-score": 80,
        "trigger": {"alert-type": "basic", "risk": 8},
    },
}

EMPLOYEES = {
    "employees": [
        {"firstName": "John", "lastName": "Doe"},
        {"firstName": "Anna", "lastName": "Smith"},
        {"firstName": "Peter", "lastName": "Jones"},
    ]
}

DOCUMENTED = [
    ("instance terminations", EC2_TERMINATED,
     {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"],
      "detail": {"state": ["terminated"]}}, True),
    ("either of two sources", EC2_TERMINATED, {"source": ["aws.ec2", "aws.fargate"]}, True),
    ("another state", EC2_TERMINATED, {"detail": {"state": ["running"]}}, False),
    ("a field the event lacks", EC2_TERMINATED, {"detail": {"c-count": [5]}}, False),
    ("simple matching", EC2_RUNNING,
     {"detail-type": ["EC2 Instance State-change Notification"],
      "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
      "detail": {"state": ["initializing", "running"]}}, True),
    ("prefix of time", EC2_RUNNING, {"time": [{"prefix": "2017-10-02"}]}, True),
    ("prefix of another day", EC2_RUNNING, {"time": [{"prefix": "2017-10-03"}]}, False),
    ("suffix of source", EC2_RUNNING, {"source": [{"suffix": "ec2"}]}, True),
    ("equals-ignore-case", EC2_RUNNING, {"source": [{"equals-ignore-case": "AWS.EC2"}]}, True),
    ("wildcard", EC2_RUNNING, {"detail-type": [{"wildcard": "EC2*Notification"}]}, True),
    ("anything-but a string", EC2_RUNNING, {"detail": {"state": [{"anything-but": "initializing"}]}}, True),
    ("anything-but a number", EC2_RUNNING, {"detail": {"x-limit": [{"anything-but": 123}]}}, True),
    ("anything-but a list of strings", EC2_RUNNING,
     {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}, True),
    ("anything-but a list naming the value", EC2_RUNNING,
     {"detail": {"state": [{"anything-but": ["stopped", "running"]}]}}, False),
    ("anything-but a list of numbers", EC2_RUNNING,
     {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}, True),
    ("anything-but a prefix", EC2_RUNNING, {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}, True),
    ("anything-but the value's prefix", EC2_RUNNING,
     {"detail": {"state": [{"anything-but": {"prefix": "run"}}]}}, False),
    ("numeric ranges", EC2_RUNNING,
     {"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}],
                 "x-limit": [{"numeric": ["=", 3.018e2]}]}}, True),
    ("a numeric range missed", EC2_RUNNING, {"detail": {"c-count": [{"numeric": [">", 5]}]}}, False),
    ("cidr", EC2_RUNNING, {"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, True),
    ("another network", EC2_RUNNING, {"detail": {"source-ip": [{"cidr": "10.0.1.0/24"}]}}, False),
    ("exists", EC2_RUNNING, {"detail": {"c-count": [{"exists": True}]}}, True),
    ("does not exist", EC2_RUNNING, {"detail": {"c-count": [{"exists": False}]}}, False),
    ("the complex example", EC2_RUNNING,
     {"time": [{"prefix": "2017-10-02"}],
      "detail": {"state": [{"anything-but": "initializing"}], "c-count": [{"numeric": [">", 0, "<=", 5]}],
                 "d-count": [{"numeric": ["<", 10]}], "x-limit": [{"anything-but": [100, 200, 300]}],
                 "source-ip": [{"cidr": "10.0.0.0/8"}]}}, True),
    ("an empty string", AUTOSCALING, {"detail": {"eventVersion": [""]}}, True),
    ("null", AUTOSCALING,
     {"source": ["aws.autoscaling"], "detail-type": ["EC2 Instance Launch Successful"],
      "detail": {"responseElements": [None]}}, True),
    ("null is not the empty string", AUTOSCALING, {"detail": {"eventVersion": [None]}}, False),
    ("the empty string is not null", AUTOSCALING, {"detail": {"responseElements": [""]}}, False),
    ("numbers in nested objects", MACIE,
     {"source": ["aws.macie"], "detail-type": ["Macie Alert"],
      "detail": {"risk-score": [80], "trigger": {"risk": [8]}}}, True),
    ("an array intersecting the event's array", MACIE,
     {"resources": ["arn:aws:macie:us-east-1:123456789012:trigger/trigger_id", "arn:aws:ec2:nothing"]}, True),
    ("an array disjoint from the event's array", MACIE, {"detail": {"tags": ["Outsider"]}}, False),
    ("a field inside an array of objects", EMPLOYEES, {"employees": {"firstName": ["Anna"]}}, True),
    ("two fields from different array elements", EMPLOYEES,
     {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}, False),
    ("two fields from one array element", EMPLOYEES,
     {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}, True),
    ("$or across fields", {"source": "aws.cloudwatch", "namespace": "AWS/EC2"},
     {"source": ["aws.cloudwatch"],
      "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2", "AWS/ES"]}]}, True),
    ("$or with no alternative satisfied", {"source": "aws.cloudwatch", "namespace": "AWS/RDS"},
     {"source": ["aws.cloudwatch"],
      "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2", "AWS/ES"]}]}, False),
]


@pytest.mark.parametrize(("event", "pattern", "expected"), [case[1:] for case in DOCUMENTED],
                         ids=[case[0] for case in DOCUMENTED])
def test_the_documented_eventbridge_examples_match_as_documented(
        event: dict[str, Any], pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, event) is expected


def test_exists_false_matches_a_field_that_holds_an_object_because_it_is_not_a_leaf() -> None:
    event = {"detail": {"state": ["initializing", "running"], "c-count": {"c1": 100}}}
    assert matches({"detail": {"c-count": [{"exists": False}]}}, event)


def test_fields_inside_arrays_nested_in_arrays_are_reached() -> None:
    event = {"employees": [[{"firstName": "John"}, {"firstName": "Anna"}], [{"firstName": "Peter"}]]}
    assert matches({"employees": {"firstName": ["Peter"]}}, event)


# --- Exact values --------------------------------------------------------------------------------

@pytest.mark.parametrize(("wanted", "actual"), [
    ("5", 5), (5, "5"), (True, 1), (1, True), (False, 0), (0, False), ("true", True), (None, ""),
    (None, False), ("", None), ("Approved", "approved"),
], ids=repr)
def test_exact_values_of_different_types_or_case_never_match(wanted: Any, actual: Any) -> None:
    assert not matches({"f": [wanted]}, {"f": actual})


@pytest.mark.parametrize("value", ["Approved", "", 0, -3, 2.5, 10**30, True, False, None], ids=repr)
def test_an_exact_value_matches_itself(value: Any) -> None:
    assert matches({"f": [value]}, {"f": value})


def test_an_exact_integer_matches_the_equal_float() -> None:
    assert matches({"f": [300]}, {"f": 300.0})


def test_any_value_of_the_array_will_do() -> None:
    assert matches({"f": ["a", "b", 3]}, {"f": 3})


def test_every_field_of_the_pattern_must_match() -> None:
    assert not matches({"a": ["x"], "b": ["y"]}, {"a": "x", "b": "z"})


def test_fields_the_pattern_does_not_name_are_ignored() -> None:
    assert matches({"a": ["x"]}, {"a": "x", "b": "anything", "c": {"d": [1]}})


class Status(StrEnum):
    APPROVED = "Approved"


class Stage(IntEnum):
    PROD = 3


def test_string_enums_in_event_data_match_as_their_strings() -> None:
    assert matches({"status": ["Approved"], "name": [{"prefix": "Appr"}]},
                   {"status": Status.APPROVED, "name": Status.APPROVED})


def test_int_enums_in_event_data_match_as_their_numbers() -> None:
    assert matches({"stage": [3], "level": [{"numeric": [">", 2]}]}, {"stage": Stage.PROD, "level": Stage.PROD})


def test_a_dot_in_a_field_name_is_literal_not_a_path() -> None:
    assert not matches({"data.status": ["Approved"]}, {"data": {"status": "Approved"}})


# --- String matchers -----------------------------------------------------------------------------

@pytest.mark.parametrize(("matcher", "value", "expected"), [
    ({"prefix": "charter."}, "charter.registry", True),
    ({"prefix": "charter."}, "Charter.registry", False),
    ({"prefix": ""}, "anything", True),
    ({"prefix": {"equals-ignore-case": "CHARTER."}}, "Charter.registry", True),
    ({"prefix": {"equals-ignore-case": "CHARTER."}}, "other", False),
    ({"suffix": ".png"}, "model.png", True),
    ({"suffix": ".png"}, "model.PNG", False),
    ({"suffix": {"equals-ignore-case": ".png"}}, "model.PNG", True),
    ({"equals-ignore-case": "approved"}, "APPROVED", True),
    ({"equals-ignore-case": "approved"}, "approve", False),
    ({"equals-ignore-case": "strasse"}, "STRASSE", True),
    ({"equals-ignore-case": "straße"}, "STRASSE", True),
], ids=repr)
def test_string_matchers_compare_strings(matcher: dict[str, Any], value: str, expected: bool) -> None:
    assert matches({"f": [matcher]}, {"f": value}) is expected


@pytest.mark.parametrize("matcher", [
    {"prefix": "1"}, {"suffix": "1"}, {"equals-ignore-case": "1"}, {"wildcard": "*"},
    {"prefix": {"equals-ignore-case": "1"}}, {"anything-but": {"prefix": "x"}},
    {"anything-but": {"suffix": "x"}}, {"anything-but": {"equals-ignore-case": "x"}},
    {"anything-but": {"wildcard": "x*"}}, {"cidr": "0.0.0.0/0"},
], ids=repr)
@pytest.mark.parametrize("value", [1, 1.0, True, None], ids=repr)
def test_string_matchers_never_match_values_that_are_not_strings(matcher: dict[str, Any], value: Any) -> None:
    assert not matches({"f": [matcher]}, {"f": value})


@pytest.mark.parametrize(("wildcard", "value", "expected"), [
    ("Simple*Service", "SimpleNotificationService", True),
    ("Simple*Service", "SimpleService", True),
    ("Simple*Service", "SimpleQueueServices", False),
    ("*.png", "dir/a.png", True),
    ("*.png", "a.png.txt", False),
    ("dir/*", "dir/", True),
    ("*", "", True),
    ("a*b*c", "abc", True),
    ("a*b*c", "axxbyyc", True),
    ("a*b*c", "acb", False),
    ("ab*ba", "aba", False),
    ("*/lib/*", "/usr/lib/x.so", True),
    ("exact", "exact", True),
    ("exact", "exactly", False),
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
    ("a\\\\*", "a\\anything", True),
    ("a.b", "axb", False),
], ids=repr)
def test_wildcards_match_any_run_of_characters_and_escaped_stars_literally(
        wildcard: str, value: str, expected: bool) -> None:
    assert matches({"f": [{"wildcard": wildcard}]}, {"f": value}) is expected


def test_a_wildcard_with_many_stars_answers_quickly_on_a_long_miss() -> None:
    pattern = compile_pattern({"f": [{"wildcard": "*a*a*a*a*a*a*a*a*a*a*b"}]})
    assert not pattern.matches({"f": "a" * 50_000})


# --- anything-but --------------------------------------------------------------------------------

@pytest.mark.parametrize(("excluded", "value", "expected"), [
    ("x", "y", True),
    ("x", "x", False),
    ("x", None, True),
    ("x", 5, True),
    (5, 5, False),
    (5, 5.0, False),
    (5, 6, True),
    (1, True, True),
    (["a", "b"], "c", True),
    (["a", "b"], "b", False),
    ([1, 2.5], 2.5, False),
    ({"prefix": "us-"}, "eu-west-1", True),
    ({"prefix": "us-"}, "us-east-1", False),
    ({"prefix": ["us-", "eu-"]}, "eu-west-1", False),
    ({"suffix": ".png"}, "a.jpg", True),
    ({"suffix": ".png"}, "a.png", False),
    ({"equals-ignore-case": "initializing"}, "INITIALIZING", False),
    ({"equals-ignore-case": ["a", "b"]}, "B", False),
    ({"equals-ignore-case": ["a", "b"]}, "c", True),
    ({"wildcard": "*/lib/*"}, "/usr/lib/x", False),
    ({"wildcard": ["*/lib/*", "*.jar"]}, "/usr/bin/x", True),
], ids=repr)
def test_anything_but_matches_present_values_other_than_those_given(
        excluded: Any, value: Any, expected: bool) -> None:
    assert matches({"f": [{"anything-but": excluded}]}, {"f": value}) is expected


def test_anything_but_does_not_match_an_absent_field() -> None:
    assert not matches({"f": [{"anything-but": "x"}]}, {"g": "y"})


def test_anything_but_or_exists_false_also_admits_an_absent_field() -> None:
    assert matches({"f": [{"anything-but": "x"}, {"exists": False}]}, {"g": "y"})


def test_anything_but_matches_an_event_array_holding_any_other_value() -> None:
    assert matches({"tags": [{"anything-but": "internal"}]}, {"tags": ["internal", "public"]})


def test_anything_but_does_not_match_an_event_array_of_only_excluded_values() -> None:
    assert not matches({"tags": [{"anything-but": ["internal", "secret"]}]}, {"tags": ["secret", "internal"]})


# --- numeric -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("condition", "value", "expected"), [
    ([">", 0], 0, False),
    ([">", 0], 0.000001, True),
    ([">=", 0], 0, True),
    (["<", 5], 5, False),
    (["<=", 5], 5, True),
    (["<=", 5], 5.0, True),
    (["=", 5], 5.0, True),
    (["=", 5.5], 5, False),
    (["=", 0], -0.0, True),
    ([">", 0, "<=", 5], 5, True),
    ([">", 0, "<=", 5], 0, False),
    ([">=", 0, "<", 5], 0, True),
    ([">=", 0, "<", 5], 5, False),
    (["<", 5, ">", 0], 3, True),
    ([">=", 1, "<=", 1], 1, True),
    ([">", -1e9], -1e9, False),
    ([">", 10**20], 10**20 + 1, True),
    (["<", 0.1], 0.09999999999999999, True),
], ids=repr)
def test_numeric_conditions_compare_numbers(condition: list[Any], value: Any, expected: bool) -> None:
    assert matches({"f": [{"numeric": condition}]}, {"f": value}) is expected


@pytest.mark.parametrize("value", [True, False, "3", None, [], {}], ids=repr)
def test_numeric_conditions_never_match_what_is_not_a_number(value: Any) -> None:
    assert not matches({"f": [{"numeric": [">=", 0]}]}, {"f": value})


def test_a_nan_in_the_event_satisfies_no_numeric_condition() -> None:
    assert not matches({"f": [{"numeric": ["<", 0]}, {"numeric": [">=", 0]}]}, {"f": float("nan")})


def test_numeric_conditions_match_any_number_in_an_event_array() -> None:
    assert matches({"scores": [{"numeric": [">", 0.9]}]}, {"scores": [0.5, 0.95]})


# --- cidr ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("network", "address", "expected"), [
    ("10.0.0.0/24", "10.0.0.255", True),
    ("10.0.0.0/24", "10.0.1.0", False),
    ("10.0.0.5/24", "10.0.0.9", True),
    ("2001:db8::/32", "2001:db8::1", True),
    ("2001:db8::/32", "2001:db9::1", False),
    ("0.0.0.0/0", "::1", False),
    ("10.0.0.0/8", "not an address", False),
], ids=repr)
def test_cidr_matches_addresses_inside_the_network(network: str, address: str, expected: bool) -> None:
    assert matches({"ip": [{"cidr": network}]}, {"ip": address}) is expected


# --- exists and absence, at every level ----------------------------------------------------------

@pytest.mark.parametrize(("event", "expected"), [
    ({"data": {"reviewer": "lena"}}, True),
    ({"data": {"reviewer": None}}, True),
    ({"data": {"reviewer": ["lena"]}}, True),
    ({"data": {"reviewer": []}}, False),
    ({"data": {"reviewer": {"name": "lena"}}}, False),
    ({"data": {}}, False),
    ({"data": "flat"}, False),
    ({}, False),
], ids=repr)
def test_exists_true_needs_a_leaf_value_null_included(event: dict[str, Any], expected: bool) -> None:
    assert matches({"data": {"reviewer": [{"exists": True}]}}, event) is expected


@pytest.mark.parametrize(("event", "expected"), [
    ({"data": {"reviewer": "lena"}}, False),
    ({"data": {"reviewer": None}}, False),
    ({"data": {"reviewer": []}}, True),
    ({"data": {"reviewer": {"name": "lena"}}}, True),
    ({"data": {}}, True),
    ({"data": "flat"}, True),
    ({}, True),
], ids=repr)
def test_exists_false_matches_wherever_the_leaf_is_missing(event: dict[str, Any], expected: bool) -> None:
    assert matches({"data": {"reviewer": [{"exists": False}]}}, event) is expected


def test_exists_false_deep_in_the_pattern_matches_when_the_whole_branch_is_missing() -> None:
    pattern = {"source": ["charter"], "data": {"model": {"card": {"owner": [{"exists": False}]}}}}
    assert matches(pattern, {"source": "charter"})


def test_exists_false_beside_another_field_still_needs_that_field() -> None:
    pattern = {"data": {"status": ["Approved"], "reviewer": [{"exists": False}]}}
    assert not matches(pattern, {"data": {"reviewer": None}})


def test_exists_true_on_an_object_field_never_matches() -> None:
    assert not matches({"data": [{"exists": True}]}, {"data": {"status": "Approved"}})


def test_exists_false_in_an_array_of_objects_matches_an_element_without_the_field() -> None:
    event = {"items": [{"flag": 1}, {"other": 2}]}
    assert matches({"items": {"flag": [{"exists": False}]}}, event)


def test_exists_false_in_an_array_of_objects_fails_when_every_element_has_the_field() -> None:
    event = {"items": [{"flag": 1}, {"flag": 2}]}
    assert not matches({"items": {"flag": [{"exists": False}]}}, event)


# --- Arrays and nesting in events ----------------------------------------------------------------

def test_a_leaf_matches_if_any_element_of_an_event_array_matches() -> None:
    assert matches({"data": {"tags": ["prod"]}}, {"data": {"tags": ["dev", "prod"]}})


def test_nested_event_arrays_are_flattened() -> None:
    assert matches({"tags": ["deep"]}, {"tags": ["a", ["b", ["deep"]]]})


def test_tuples_in_events_count_as_arrays() -> None:
    assert matches({"tags": ["b"]}, {"tags": ("a", "b")})


def test_an_empty_event_array_matches_no_value() -> None:
    assert not matches({"tags": [{"anything-but": "x"}]}, {"tags": []})


def test_a_leaf_pattern_does_not_match_an_object_value() -> None:
    assert not matches({"data": ["Approved"]}, {"data": {"status": "Approved"}})


def test_a_nested_pattern_does_not_match_a_scalar_value() -> None:
    assert not matches({"data": {"status": ["Approved"]}}, {"data": "Approved"})


def test_a_nested_pattern_does_not_match_an_array_of_scalars() -> None:
    assert not matches({"data": {"status": ["Approved"]}}, {"data": ["Approved"]})


def test_nested_fields_match_several_levels_down() -> None:
    event = {"data": {"model": {"card": {"owner": "lena", "risk": "low"}}}}
    assert matches({"data": {"model": {"card": {"owner": ["lena"], "risk": ["low", "medium"]}}}}, event)


def test_a_nested_mismatch_fails_the_whole_pattern() -> None:
    event = {"data": {"model": {"card": {"owner": "lena", "risk": "high"}}}}
    assert not matches({"data": {"model": {"card": {"owner": ["lena"], "risk": ["low"]}}}}, event)


def test_or_alternatives_may_sit_inside_nested_objects() -> None:
    pattern = {"data": {"$or": [{"status": ["Approved"]}, {"override": [True]}]}}
    assert matches(pattern, {"data": {"status": "Rejected", "override": True}})


def test_or_alternatives_are_anded_with_the_other_fields() -> None:
    pattern = {"type": ["a"], "$or": [{"x": [1]}, {"y": [2]}]}
    assert not matches(pattern, {"type": "b", "x": 1})


def test_values_that_are_not_json_are_present_but_equal_nothing() -> None:
    pattern = compile_pattern({"f": [{"exists": True}], "g": [{"anything-but": "x"}], "h": ["{1}"]})
    assert pattern.matches({"f": {1}, "g": object(), "h": {"1"}}) is False
    assert pattern.matches({"f": {1}, "g": object(), "h": "{1}"}) is True


# --- Charter's own events ------------------------------------------------------------------------

def test_a_pattern_matches_a_charter_event_as_a_cloudevent() -> None:
    event = Event(type="charter.registry.model-version.approved", source="/accounts/ml-prod",
                  subject="churn/3", data={"status": "Approved", "metrics": {"auc": 0.91}})
    pattern = compile_pattern({"type": [{"wildcard": "charter.registry.*.approved"}],
                               "data": {"metrics": {"auc": [{"numeric": [">=", 0.9]}]}}})
    assert pattern.matches(event.to_cloudevent())


def test_the_compiled_pattern_keeps_its_document_as_compact_json() -> None:
    pattern = compile_pattern({"source": ("a", "b")})
    assert pattern.text == '{"source":["a","b"]}'
    assert pattern.document == {"source": ["a", "b"]}


def test_changing_the_returned_document_does_not_change_the_pattern() -> None:
    pattern = compile_pattern({"source": ["a"]})
    pattern.document["source"].append("b")
    assert pattern.document == {"source": ["a"]}


def test_changing_the_source_dict_after_compiling_does_not_change_matching() -> None:
    source: dict[str, Any] = {"source": ["a"]}
    pattern = compile_pattern(source)
    source["source"] = ["b"]
    assert pattern.matches({"source": "a"})


def test_patterns_with_the_same_text_are_equal_and_hash_alike() -> None:
    first, second = compile_pattern({"a": [1]}), compile_pattern({"a": [1]})
    assert first == second and hash(first) == hash(second) and isinstance(first, Pattern)


# --- Validation ----------------------------------------------------------------------------------

INVALID = [
    ("a list", [], ROOT, "an event pattern is a JSON object"),
    ("a string", "source", ROOT, "an event pattern is a JSON object"),
    ("empty", {}, ROOT, "a pattern must name at least one field"),
    ("empty nested object", {"data": {}}, "data", "an empty object"),
    ("a bare value", {"source": "aws.ec2"}, "source", "expected an array of matchers or a nested object"),
    ("a null leaf", {"source": None}, "source", "expected an array of matchers or a nested object"),
    ("an empty array", {"data": {"status": []}}, "data.status", "an empty array matches nothing"),
    ("a nested array", {"f": ["a", ["b"]]}, "f[1]", "matcher arrays do not nest"),
    ("a NaN", {"f": [float("nan")]}, "f[0]", "NaN, infinities"),
    ("an infinity", {"f": [float("inf")]}, "f[0]", "NaN, infinities"),
    ("an int beyond float range", {"f": [10**400]}, "f[0]", "numbers beyond ±1e308"),
    ("an int too long to print", {"f": [{"numeric": [10**5000, 1]}]}, "f[0].numeric[0]",
     "unknown numeric operator a number out of range"),
    ("a set", {"f": [{"a"}]}, "f[0]", "not JSON"),
    ("a non-string key", {1: ["a"]}, ROOT, "field names are strings"),
    ("an unknown matcher", {"data": {"status": ["x", {"prefx": "a"}]}}, "data.status[1]", "unknown matcher 'prefx'"),
    ("an empty matcher", {"f": [{}]}, "f[0]", "an empty matcher object"),
    ("two keys in a matcher", {"f": [{"prefix": "a", "suffix": "b"}]}, "f[0]", "exactly one key, got 2"),
    ("a numeric prefix", {"f": [{"prefix": 1}]}, "f[0].prefix", "prefix takes a string"),
    ("an unknown prefix option", {"f": [{"prefix": {"ignore-case": "a"}}]}, "f[0].prefix", "prefix takes a string"),
    ("a numeric ignore-case prefix", {"f": [{"prefix": {"equals-ignore-case": 1}}]},
     "f[0].prefix.equals-ignore-case", "equals-ignore-case takes a string"),
    ("a null suffix", {"f": [{"suffix": None}]}, "f[0].suffix", "suffix takes a string"),
    ("a list for equals-ignore-case", {"f": [{"equals-ignore-case": ["a"]}]}, "f[0].equals-ignore-case",
     "equals-ignore-case takes a string"),
    ("a numeric wildcard", {"f": [{"wildcard": 5}]}, "f[0].wildcard", "wildcard takes a string"),
    ("two stars", {"f": [{"wildcard": "a**"}]}, "f[0].wildcard", "two '*' in a row"),
    ("a stray escape", {"f": [{"wildcard": "a\\b"}]}, "f[0].wildcard", "backslash may only escape"),
    ("a trailing escape", {"f": [{"wildcard": "a\\"}]}, "f[0].wildcard", "backslash may only escape"),
    ("exists as a string", {"f": [{"exists": "true"}]}, "f[0].exists", "exists takes true or false"),
    ("a bad network", {"f": [{"cidr": "10.0.0.0/33"}]}, "f[0].cidr", "not an IPv4 or IPv6 network"),
    ("a numeric network", {"f": [{"cidr": 10}]}, "f[0].cidr", "cidr takes a string"),
    ("anything-but null", {"f": [{"anything-but": None}]}, "f[0].anything-but", "anything-but takes a string"),
    ("anything-but true", {"f": [{"anything-but": True}]}, "f[0].anything-but", "anything-but takes a string"),
    ("anything-but nothing", {"f": [{"anything-but": []}]}, "f[0].anything-but", "at least one value"),
    ("anything-but mixed", {"f": [{"anything-but": ["a", 1]}]}, "f[0].anything-but", "not both"),
    ("anything-but with null", {"f": [{"anything-but": ["a", None]}]}, "f[0].anything-but[1]",
     "anything-but lists hold strings or numbers"),
    ("anything-but exists", {"f": [{"anything-but": {"exists": True}}]}, "f[0].anything-but",
     "anything-but cannot take 'exists'"),
    ("anything-but two forms", {"f": [{"anything-but": {"prefix": "a", "suffix": "b"}}]}, "f[0].anything-but",
     "exactly one of"),
    ("anything-but an empty prefix", {"f": [{"anything-but": {"prefix": ""}}]}, "f[0].anything-but.prefix",
     "would exclude every string"),
    ("anything-but an empty suffix in a list", {"f": [{"anything-but": {"suffix": ["a", ""]}}]},
     "f[0].anything-but.suffix[1]", "would exclude every string"),
    ("anything-but an empty list of prefixes", {"f": [{"anything-but": {"prefix": []}}]},
     "f[0].anything-but.prefix", "needs at least one string"),
    ("anything-but a numeric wildcard", {"f": [{"anything-but": {"wildcard": 3}}]},
     "f[0].anything-but.wildcard", "anything-but wildcard takes strings"),
    ("anything-but a bad wildcard", {"f": [{"anything-but": {"wildcard": ["ok*", "x**"]}}]},
     "f[0].anything-but.wildcard[1]", "two '*' in a row"),
    ("numeric not a list", {"f": [{"numeric": 5}]}, "f[0].numeric", "numeric takes one or two conditions"),
    ("numeric empty", {"f": [{"numeric": []}]}, "f[0].numeric", "numeric takes one or two conditions"),
    ("numeric odd", {"f": [{"numeric": [">", 1, "<"]}]}, "f[0].numeric", "got an array of 3 items"),
    ("numeric three conditions", {"f": [{"numeric": [">", 0, "<", 9, "<", 5]}]}, "f[0].numeric",
     "got an array of 6 items"),
    ("a bad operator", {"f": [{"numeric": ["!=", 1]}]}, "f[0].numeric[0]", "unknown numeric operator"),
    ("an operator that is not a string", {"f": [{"numeric": [1, 1]}]}, "f[0].numeric[0]",
     "unknown numeric operator"),
    ("a string bound", {"f": [{"numeric": [">", "1"]}]}, "f[0].numeric[1]", "a numeric bound is a finite number"),
    ("a boolean bound", {"f": [{"numeric": [">", True]}]}, "f[0].numeric[1]", "a numeric bound is a finite number"),
    ("an infinite bound", {"f": [{"numeric": ["<", float("inf")]}]}, "f[0].numeric[1]",
     "a numeric bound is a finite number"),
    ("a bad upper operator", {"f": [{"numeric": [">", 0, "=<", 5]}]}, "f[0].numeric[2]",
     "unknown numeric operator"),
    ("equals in a range", {"f": [{"numeric": ["=", 0, "<", 5]}]}, "f[0].numeric", "'=' stands alone"),
    ("two lower bounds", {"f": [{"numeric": [">", 0, ">=", 5]}]}, "f[0].numeric", "one lower bound"),
    ("two upper bounds", {"f": [{"numeric": ["<", 0, "<=", 5]}]}, "f[0].numeric", "one upper bound"),
    ("lower above upper", {"f": [{"numeric": [">", 10, "<=", 5]}]}, "f[0].numeric",
     "the lower bound 10 is above the upper bound 5"),
    ("an empty open range", {"f": [{"numeric": [">", 5, "<=", 5]}]}, "f[0].numeric", "no number is > 5 and <= 5"),
    ("$or not a list", {"$or": {"a": ["x"]}}, "$or", "$or takes an array of at least two objects"),
    ("$or with one alternative", {"$or": [{"a": ["x"]}]}, "$or", "at least two alternatives, got 1"),
    ("$or with a non-object", {"$or": [{"a": ["x"]}, ["b"]]}, "$or[1]", "each $or alternative is an object"),
    ("a bad matcher inside $or", {"data": {"$or": [{"a": ["x"]}, {"b": [{"nope": 1}]}]}}, "data.$or[1].b[0]",
     "unknown matcher 'nope'"),
    ("a name needing quotes", {"data": {"a.b": "x"}}, 'data["a.b"]', "expected an array of matchers"),
    ("a top-level name needing quotes", {"a b": "x"}, '["a b"]', "expected an array of matchers"),
]


@pytest.mark.parametrize(("pattern", "field", "reason"), [case[1:] for case in INVALID],
                         ids=[case[0] for case in INVALID])
def test_each_invalid_pattern_is_refused_naming_the_path_and_the_reason(
        pattern: object, field: str, reason: str) -> None:
    found = problems(pattern)
    assert len(found) == 1, found
    assert found[0][0] == field
    assert reason in found[0][1]


@pytest.mark.parametrize("pattern", [
    {"f": [{"prefix": ""}]},
    {"f": [{"suffix": {"equals-ignore-case": ""}}]},
    {"f": [{"wildcard": ""}]},
    {"f": [{"wildcard": "\\\\\\*"}]},
    {"f": [{"numeric": ["=", -0.5]}]},
    {"f": [{"numeric": [">=", 5, "<=", 5]}]},
    {"f": [{"numeric": ["<", 10**30]}]},
    {"f": [{"anything-but": 1.5}]},
    {"f": [{"anything-but": {"equals-ignore-case": ["a", "B"]}}]},
    {"f": [{"cidr": "::/0"}]},
    {"f": ["a", 1, 2.5, True, False, None, {"exists": False}]},
    {"$or": [{"a": ["x"]}, {"b": ["y"]}, {"c": {"d": ["z"]}}]},
    {"$or": ({"a": ["x"]}, {"b": ["y"]})},
], ids=repr)
def test_valid_patterns_raise_no_problem(pattern: dict[str, Any]) -> None:
    assert validate_pattern(pattern) == []


def test_every_problem_is_reported_not_only_the_first() -> None:
    pattern = {"source": "x", "data": {"status": [], "score": [{"numeric": [">", "a"]}], "tag": [{"prefx": 1}]}}
    assert [field for field, _ in problems(pattern)] == [
        "source", "data.status", "data.score[0].numeric[1]", "data.tag[0]"]


def test_problems_are_plan_problems_with_a_field_and_a_reason() -> None:
    assert validate_pattern({"f": []}) == [Problem("f", "an empty array matches nothing")]


def test_compiling_an_invalid_pattern_raises_a_validation_error_listing_every_problem() -> None:
    with pytest.raises(ValidationError) as raised:
        compile_pattern({"a": [], "b": [{"exists": 1}]})
    assert raised.value.details == {"problems": [
        {"field": "a", "reason": "an empty array matches nothing"},
        {"field": "b[0].exists", "reason": "exists takes true or false, got the number 1"},
    ]}
    assert "a: an empty array matches nothing" in raised.value.message


def test_the_error_message_summarises_many_problems_while_the_details_keep_them_all() -> None:
    with pytest.raises(ValidationError) as raised:
        compile_pattern({f"f{i}": [] for i in range(8)})
    assert raised.value.message.endswith("(and 3 more)")
    assert len(raised.value.details["problems"]) == 8


def test_the_validation_error_details_are_json() -> None:
    with pytest.raises(ValidationError) as raised:
        compile_pattern({"a": "b"})
    json.dumps(raised.value.to_dict())


# --- Limits --------------------------------------------------------------------------------------

def _nested(depth: int) -> dict[str, Any]:
    pattern: dict[str, Any] = {"leaf": ["x"]}
    for _ in range(depth - 1):
        pattern = {"n": pattern}
    return pattern


def test_a_pattern_nested_to_the_limit_is_accepted() -> None:
    assert validate_pattern(_nested(MAX_DEPTH)) == []


def test_a_pattern_nested_beyond_the_limit_is_refused_where_it_goes_too_deep() -> None:
    assert problems(_nested(MAX_DEPTH + 1)) == [
        (".".join(["n"] * MAX_DEPTH), f"nested deeper than {MAX_DEPTH} levels")]


def test_or_alternatives_count_towards_the_depth() -> None:
    pattern = {"$or": [_nested(MAX_DEPTH), {"b": ["y"]}]}
    assert [field for field, _ in problems(pattern)] == ["$or[0]" + ".n" * (MAX_DEPTH - 1)]


def test_a_pattern_with_the_most_matchers_allowed_is_accepted() -> None:
    assert validate_pattern({"f": list(range(MAX_MATCHERS))}) == []


def test_a_pattern_with_too_many_matchers_is_refused() -> None:
    pattern = {"f": list(range(MAX_MATCHERS // 2)), "g": list(range(MAX_MATCHERS // 2 + 1))}
    assert problems(pattern) == [
        (ROOT, f"the pattern has {MAX_MATCHERS + 1} matchers, more than the {MAX_MATCHERS} allowed")]


def test_a_pattern_larger_than_the_size_limit_is_refused_unread() -> None:
    pattern = {"f": ["x" * MAX_PATTERN_CHARS], "g": "not even looked at"}
    [(field, reason)] = problems(pattern)
    assert field == ROOT and "more than the" in reason


def test_a_self_referencing_pattern_is_refused_without_looping() -> None:
    pattern: dict[str, Any] = {"f": ["x"]}
    pattern["self"] = pattern
    assert any("nested deeper" in reason for _, reason in problems(pattern))


def test_an_absurdly_deep_pattern_is_refused_without_a_recursion_error() -> None:
    pattern: dict[str, Any] = {"leaf": ["x"]}
    for _ in range(5000):
        pattern = {"n": pattern}
    assert any("nested deeper" in reason for _, reason in problems(pattern))


def test_a_deeply_nested_event_array_is_matched_without_a_recursion_error() -> None:
    value: Any = "needle"
    for _ in range(5000):
        value = [value]
    assert matches({"f": ["needle"]}, {"f": value})
