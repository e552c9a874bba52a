"""Properties of event patterns that must hold for every event, checked on generated ones."""

from __future__ import annotations

import json
import os
import re
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from charter.domain.patterns import compile_pattern, validate_pattern
from charter.errors import ValidationError

# Set here rather than in a profile so that other test modules keep Hypothesis's defaults.
EXAMPLES = settings(max_examples=int(os.environ.get("PATTERN_EXAMPLES", "100")), deadline=None)

names = st.text(min_size=1, max_size=8).filter(lambda name: name != "$or")
strings = st.text(max_size=12)
numbers = st.integers(min_value=-(10**12), max_value=10**12) | st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | numbers | strings
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=20,
)
events = st.dictionaries(names, json_values, max_size=6)


def _leaf_values(value: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in value:
        if isinstance(item, list):
            out += _leaf_values(item)
        elif not isinstance(item, dict):
            out.append(item)
    return out


def _exact_pattern(event: dict[str, Any]) -> dict[str, Any]:
    """A pattern demanding each of the event's own values, wherever a pattern can say so exactly."""
    pattern: dict[str, Any] = {}
    for key, value in event.items():
        if isinstance(value, dict):
            nested = _exact_pattern(value)
            if nested:
                pattern[key] = nested
        elif isinstance(value, list):
            leaves = _leaf_values(value)
            if leaves:
                pattern[key] = leaves[:1]
        else:
            pattern[key] = [value]
    return pattern


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*")


@EXAMPLES
@given(events)
def test_a_pattern_of_an_events_own_values_always_matches_it(event: dict[str, Any]) -> None:
    pattern = _exact_pattern(event)
    assume(pattern and validate_pattern(pattern) == [])
    assert compile_pattern(pattern).matches(event)


@EXAMPLES
@given(events)
def test_exists_true_on_every_leaf_of_an_event_always_matches_it(event: dict[str, Any]) -> None:
    pattern = json.loads(json.dumps(_exact_pattern(event)),
                         object_hook=lambda d: {k: [{"exists": True}] if isinstance(v, list) else v
                                                for k, v in d.items()})
    assume(pattern and validate_pattern(pattern) == [])
    assert compile_pattern(pattern).matches(event)


@EXAMPLES
@given(strings | numbers)
def test_anything_but_a_value_never_matches_that_value(value: Any) -> None:
    assert not compile_pattern({"f": [{"anything-but": value}]}).matches({"f": value})


@EXAMPLES
@given(strings | numbers, strings | numbers)
def test_anything_but_a_value_matches_every_value_unequal_to_it(excluded: Any, value: Any) -> None:
    assume(type(excluded) is not type(value) or excluded != value)
    assume(not (isinstance(excluded, int | float) and isinstance(value, int | float) and excluded == value))
    assert compile_pattern({"f": [{"anything-but": excluded}]}).matches({"f": value})


@EXAMPLES
@given(st.lists(strings, min_size=1, max_size=5), scalars)
def test_anything_but_a_list_is_the_negation_of_the_exact_list_on_a_present_value(
        listed: list[str], value: Any) -> None:
    excluded = compile_pattern({"f": [{"anything-but": listed}]}).matches({"f": value})
    included = compile_pattern({"f": listed}).matches({"f": value})
    assert excluded is not included


@EXAMPLES
@given(strings, strings, strings)
def test_a_prefix_suffix_and_wildcard_cut_from_a_string_match_it(head: str, middle: str, tail: str) -> None:
    text = head + middle + tail
    pattern = compile_pattern({"f": [{"prefix": head}], "g": [{"suffix": tail}],
                               "h": [{"wildcard": f"{_escape(head)}*{_escape(tail)}"}]})
    assert pattern.matches({"f": text, "g": text, "h": text})


@EXAMPLES
@given(strings)
def test_an_escaped_string_as_a_wildcard_matches_exactly_that_string(text: str) -> None:
    pattern = compile_pattern({"f": [{"wildcard": _escape(text)}]})
    assert pattern.matches({"f": text}) and not pattern.matches({"f": text + "x"})


@EXAMPLES
@given(st.text(alphabet="ab*\\", max_size=10), st.text(alphabet="ab*\\", max_size=10))
def test_a_wildcard_accepts_what_the_equivalent_regular_expression_accepts(wildcard: str, text: str) -> None:
    assume(validate_pattern({"f": [{"wildcard": wildcard}]}) == [])
    pieces = re.split(r"(\\\\|\\\*|\*)", wildcard)
    regex = "".join(".*" if p == "*" else re.escape(p[1:] if p in ("\\\\", "\\*") else p) for p in pieces)
    expected = re.fullmatch(regex, text, re.DOTALL) is not None
    assert compile_pattern({"f": [{"wildcard": wildcard}]}).matches({"f": text}) is expected


@EXAMPLES
@given(numbers, numbers, numbers, st.booleans(), st.booleans())
def test_a_numeric_range_matches_exactly_the_numbers_between_its_bounds(
        a: float, b: float, value: float, low_open: bool, high_open: bool) -> None:
    low, high = min(a, b), max(a, b)
    low_op, high_op = (">" if low_open else ">="), ("<" if high_open else "<=")
    assume(validate_pattern({"f": [{"numeric": [low_op, low, high_op, high]}]}) == [])
    expected = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    assert compile_pattern({"f": [{"numeric": [low_op, low, high_op, high]}]}).matches({"f": value}) is expected


@EXAMPLES
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=10))
def test_equals_ignore_case_matches_every_casing_of_a_string(text: str) -> None:
    pattern = compile_pattern({"f": [{"equals-ignore-case": text}]})
    assert pattern.matches({"f": text.upper()}) and pattern.matches({"f": text.lower()})


anything = st.recursive(
    scalars | st.sets(st.integers(), max_size=2) | st.sampled_from([float("nan"), float("-inf"), 10**400]),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner) | st.dictionaries(names | st.integers(), inner,
                                                                                    max_size=4),
    max_leaves=25,
)


@EXAMPLES
@given(anything)
def test_validation_never_raises_and_compiling_refuses_exactly_what_validation_refuses(pattern: Any) -> None:
    found = validate_pattern(pattern)
    try:
        compile_pattern(pattern)
    except ValidationError as error:
        assert error.details["problems"] == [{"field": p.field, "reason": p.reason} for p in found]
    else:
        assert found == []


SAMPLE_PATTERNS = [
    {"a": ["x", 1, None, True]},
    {"a": [{"prefix": "x"}, {"suffix": {"equals-ignore-case": "Y"}}, {"wildcard": "*z*"}]},
    {"a": [{"anything-but": ["x", "y"]}, {"anything-but": {"wildcard": ["*1", "2*"]}}]},
    {"a": [{"numeric": [">", 0, "<=", 5]}, {"cidr": "10.0.0.0/8"}, {"exists": False}]},
    {"a": {"b": [{"exists": True}], "$or": [{"c": [1]}, {"d": {"e": [{"anything-but": 3}]}}]}},
]


@EXAMPLES
@given(st.sampled_from(SAMPLE_PATTERNS), st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), anything,
                                                         max_size=4))
def test_matching_never_raises_whatever_the_event_holds(pattern: dict[str, Any], event: dict[str, Any]) -> None:
    assert compile_pattern(pattern).matches(event) in (True, False)
