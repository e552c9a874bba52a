"""Event patterns in the manner of Amazon EventBridge: declarative filters that choose which events a rule receives.

A pattern is a JSON object shaped like the events it selects. Each leaf is an array of matchers; a
field matches when *any* matcher in its array matches (OR), and an object matches when *all* of its
fields match (AND). Nested objects reach nested fields::

    {"type": [{"prefix": "charter.registry."}],
     "data": {"status": ["Approved"], "accuracy": [{"numeric": [">=", 0.9]}]}}

Patterns are data rather than code so that a rule can be stored, shown, diffed, audited and checked
before it is saved, and so that deciding whether an event matches can never run a user's code.

Matchers (as in EventBridge's content filtering):

* an exact value: a string, a number, ``true``, ``false`` or ``null``; types never mix (``"5"`` is
  not ``5``, ``true`` is not ``1``, ``""`` is not ``null``);
* ``{"prefix": s}``, ``{"suffix": s}``, either also as ``{"prefix": {"equals-ignore-case": s}}``;
* ``{"equals-ignore-case": s}``, by Unicode case folding (``"straße"`` equals ``"STRASSE"``);
* ``{"wildcard": "a*b"}``: ``*`` stands for any run of characters, ``\\*`` for a literal star and
  ``\\\\`` for a literal backslash; two stars in a row and any other escape are refused;
* ``{"anything-but": v}`` where ``v`` is a string, a number, a list of only strings or only
  numbers, or one of ``{"prefix": ...}``, ``{"suffix": ...}``, ``{"equals-ignore-case": ...}``,
  ``{"wildcard": ...}`` (each taking one string or a list of them);
* ``{"numeric": [">", 0, "<=", 5]}``: one condition, or a lower and an upper bound, with the
  operators ``=``, ``<``, ``<=``, ``>``, ``>=``;
* ``{"exists": true}`` / ``{"exists": false}``;
* ``{"cidr": "10.0.0.0/24"}`` for IPv4 and IPv6 address strings;
* ``"$or": [{...}, {...}]`` as a field of any object: at least one of the alternative objects
  must match, alongside that object's other fields.

Decisions where EventBridge leaves room, or where this implementation differs on purpose:

* **Empty patterns are refused**, as EventBridge refuses them: ``{}`` (at the top or nested) names
  no condition and would silently select every event. A rule that wants every event should say so
  by carrying no pattern at all, which callers handle before reaching this module.
* **Numbers compare by value.** EventBridge documents that ``300``, ``300.0`` and ``3.0e2`` differ
  as exact values, yet its engine also adds a numeric-equality matcher for each exact number; here
  the event is a parsed Python mapping where that text is gone, so ``300`` matches ``300.0``.
  Booleans are never numbers, although Python counts them as ints. No range limit is imposed on
  numbers (EventBridge's comes from its fixed-width encoding, which this has no need of).
* **String matchers consider only strings**, including their ``anything-but`` forms:
  ``{"anything-but": {"prefix": "init"}}`` does not match ``42``. A plain ``anything-but`` of values
  matches every present value not listed, ``null`` and numbers included (as EventBridge does).
* **Absent fields match only ``{"exists": false}``.** ``anything-but`` needs the field to be present;
  ``["x", {"exists": false}]`` reads "is x, or is missing". ``null`` counts as present. A field whose
  value is an object, an empty array, or an array holding only objects is not a leaf, so it counts
  as absent for leaf matchers (EventBridge: "exists matching only works on leaf nodes").
* **Arrays in the event**: a leaf field matches if any element matches (nested arrays flattened); a
  nested pattern object matches if any object in the array matches it as a whole, so two fields of
  one pattern object must be satisfied by the same array element (EventBridge's array-consistent
  matching).
* Field names are literal: a ``.`` in a name is an ordinary character, not a path separator.

Validation reports every problem at once, each named by its JSON path in the pattern (for example
``data.status[1]``; ``(pattern)`` for the whole pattern), and guards against abuse with limits on
nesting depth, total matchers and encoded size.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard

from charter.domain.plan import Problem
from charter.errors import ValidationError

MAX_DEPTH: Final = 10
"""Most objects nested inside one another, the pattern itself counting as one (``$or`` alternatives count too)."""

MAX_MATCHERS: Final = 1000
"""Most entries across all of a pattern's matcher arrays: bounds the work of matching one event."""

MAX_PATTERN_CHARS: Final = 64 * 1024
"""Largest pattern, in characters of compact JSON: a bigger one is refused unread."""

ROOT: Final = "(pattern)"
"""The field name under which problems of the pattern as a whole are reported."""

_OR: Final = "$or"

_LARGEST_INT: Final = 10**308
_NUMERIC_OPERATORS: Final = frozenset({"=", "<", "<=", ">", ">="})
_LOWER: Final = frozenset({">", ">="})
_PLAIN_NAME = re.compile(r"[^.\[\]\"\s]+")

_Predicate = Callable[[Any], bool]
"""A compiled matcher: is this present leaf value (never an object or an array) selected?"""


# --------------------------------------------------------------------------------------------
# The public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pattern:
    """A validated event pattern, compiled once so that matching an event does no parsing.

    Build it with :func:`compile_pattern`. ``text`` is the pattern as compact JSON, which makes a
    Pattern immutable, hashable and comparable by what it says.
    """

    text: str
    _root: _Node = field(compare=False, repr=False)

    @property
    def document(self) -> dict[str, Any]:
        """A fresh copy of the pattern as a JSON object (callers may change it freely)."""
        document: dict[str, Any] = json.loads(self.text)
        return document

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Does the event (as ``Event.to_cloudevent()`` gives it) satisfy every condition?"""
        return self._root.match_object(event)


def validate_pattern(pattern: object) -> list[Problem]:
    """Every reason ``pattern`` is not a valid event pattern, each at its JSON path; empty if valid.

    Never raises, whatever it is given: it sits in front of user input (API bodies, YAML files).
    """
    size = _encoded_size(pattern)
    if size is not None and size > MAX_PATTERN_CHARS:
        return [Problem(ROOT, f"the pattern is {size} characters of JSON, more than the "
                              f"{MAX_PATTERN_CHARS} allowed")]
    checker = _Checker()
    checker.check_root(pattern)
    return checker.problems


def compile_pattern(pattern: object) -> Pattern:
    """Validate ``pattern`` and compile it for fast matching.

    Raises ValidationError listing every problem in ``details["problems"]`` as ``{"field", "reason"}``
    items, so that a user fixes a pattern in one round rather than one error at a time.
    """
    problems = validate_pattern(pattern)
    if problems:
        raise _refuse(problems)
    assert isinstance(pattern, Mapping)
    text = json.dumps(pattern, separators=(",", ":"), ensure_ascii=False)
    return Pattern(text, _compile_node(json.loads(text)))


def _refuse(problems: list[Problem]) -> ValidationError:
    shown = "; ".join(f"{p.field}: {p.reason}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return ValidationError(f"invalid event pattern: {shown}{more}",
                           problems=[{"field": p.field, "reason": p.reason} for p in problems])


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _kind(value: object) -> str:
    """How a value reads in JSON terms, for messages addressed to people who wrote JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 40 else "a string"
    if isinstance(value, int | float):
        return f"the number {value!r}" if _is_finite_number(value) else "a number out of range"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}, which is not JSON"


def _name(value: object) -> str:
    """A key as it appears in a message: quoted when a string (and cut short when long)."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else f"{value[:40]!r}..."
    return _kind(value)


def _is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number: Python's bool is an int, but JSON's true is not a number."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_finite_number(value: object) -> TypeGuard[int | float]:
    """A number a pattern may hold: not NaN nor infinite, and an int within float range.

    The bound on ints keeps every number printable and encodable (Python refuses to turn ints of
    over 4300 digits into text), so that validation can always explain itself and never raise.
    """
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_number(value) and -_LARGEST_INT < value < _LARGEST_INT


def _is_array(value: object) -> TypeGuard[list[Any] | tuple[Any, ...]]:
    """A JSON array as Python code may hand one over: a list, or a tuple."""
    return isinstance(value, list | tuple)


def _join(path: str, key: str) -> str:
    """The path of ``key`` inside ``path``: ``data.status``, or ``data["a.b"]`` when the name needs quoting."""
    if _PLAIN_NAME.fullmatch(key):
        return key if path == ROOT else f"{path}.{key}"
    quoted = f"[{json.dumps(key, ensure_ascii=False)}]"
    return quoted if path == ROOT else f"{path}{quoted}"


def _encoded_size(pattern: object) -> int | None:
    """Characters of compact JSON, or None when the value cannot be encoded (the walk says why)."""
    try:
        return len(json.dumps(pattern, separators=(",", ":"), ensure_ascii=False,
                              skipkeys=True, default=repr))
    except (ValueError, TypeError, RecursionError):
        return None


class _Checker:
    """Walks a candidate pattern once, collecting every problem rather than stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.matchers = 0

    def add(self, path: str, reason: str) -> None:
        self.problems.append(Problem(path, reason))

    def check_root(self, pattern: object) -> None:
        if not isinstance(pattern, Mapping):
            self.add(ROOT, f"an event pattern is a JSON object, got {_kind(pattern)}")
            return
        if not pattern:
            self.add(ROOT, "a pattern must name at least one field; an empty pattern would match every event")
            return
        self.check_object(pattern, ROOT, depth=1)
        if self.matchers > MAX_MATCHERS:
            self.add(ROOT, f"the pattern has {self.matchers} matchers, more than the {MAX_MATCHERS} allowed")

    def check_object(self, node: Mapping[Any, Any], path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.add(path, f"nested deeper than {MAX_DEPTH} levels")
            return
        if not node:
            self.add(path, "an empty object names no field to match")
            return
        for key, value in node.items():
            if not isinstance(key, str):
                self.add(path, f"field names are strings, got {_kind(key)}")
            elif key == _OR:
                self.check_or(value, _join(path, key), depth)
            else:
                self.check_field(value, _join(path, key), depth)

    def check_field(self, value: object, path: str, depth: int) -> None:
        if isinstance(value, Mapping):
            self.check_object(value, path, depth + 1)
        elif _is_array(value):
            self.check_matchers(value, path)
        else:
            self.add(path, f"expected an array of matchers or a nested object, got {_kind(value)}")

    def check_or(self, value: object, path: str, depth: int) -> None:
        if not _is_array(value):
            self.add(path, f"$or takes an array of at least two objects, got {_kind(value)}")
            return
        if len(value) < 2:
            self.add(path, f"$or takes at least two alternatives, got {len(value)}")
        for i, alternative in enumerate(value):
            where = f"{path}[{i}]"
            if isinstance(alternative, Mapping):
                self.check_object(alternative, where, depth + 1)
            else:
                self.add(where, f"each $or alternative is an object, got {_kind(alternative)}")

    def check_matchers(self, values: Sequence[object], path: str) -> None:
        if not values:
            self.add(path, "an empty array matches nothing")
            return
        for i, value in enumerate(values):
            self.matchers += 1
            where = f"{path}[{i}]"
            if isinstance(value, Mapping):
                self.check_matcher(value, where)
            elif _is_array(value):
                self.add(where, "matcher arrays do not nest; list the values in one array")
            elif _is_number(value) and not _is_finite_number(value):
                self.add(where, "NaN, infinities and numbers beyond ±1e308 are not allowed")
            elif not (value is None or isinstance(value, str | bool) or _is_number(value)):
                self.add(where, f"expected a string, number, true, false, null or a matcher object, "
                                f"got {_kind(value)}")

    def check_matcher(self, matcher: Mapping[Any, Any], path: str) -> None:
        if not matcher:
            self.add(path, "an empty matcher object; write the value, or a matcher such as {\"prefix\": ...}")
            return
        if len(matcher) != 1:
            names = ", ".join(_name(k) for k in matcher)
            self.add(path, f"a matcher object has exactly one key, got {len(matcher)}: {names}")
            return
        ((name, operand),) = matcher.items()
        check = _OPERAND_CHECKS.get(name) if isinstance(name, str) else None
        if check is None:
            self.add(path, f"unknown matcher {_name(name)}")
            return
        self.problems += check(operand, _join(path, name))


def _check_affix(name: str, operand: object, path: str) -> list[Problem]:
    """prefix / suffix: a string (an empty one matches every string), or {"equals-ignore-case": string}."""
    if isinstance(operand, str):
        return []
    if isinstance(operand, Mapping) and list(operand) == ["equals-ignore-case"]:
        inner = operand["equals-ignore-case"]
        if isinstance(inner, str):
            return []
        return [Problem(f"{path}.equals-ignore-case", f"equals-ignore-case takes a string, got {_kind(inner)}")]
    return [Problem(path, f'{name} takes a string or {{"equals-ignore-case": string}}, got {_kind(operand)}')]


def _check_string(operand: object, path: str) -> list[Problem]:
    """equals-ignore-case: one string."""
    if isinstance(operand, str):
        return []
    return [Problem(path, f"equals-ignore-case takes a string, got {_kind(operand)}")]


def _check_wildcard(operand: object, path: str) -> list[Problem]:
    if not isinstance(operand, str):
        return [Problem(path, f"wildcard takes a string, got {_kind(operand)}")]
    try:
        _wildcard_segments(operand)
    except ValueError as error:
        return [Problem(path, str(error))]
    return []


def _check_exists(operand: object, path: str) -> list[Problem]:
    if isinstance(operand, bool):
        return []
    return [Problem(path, f"exists takes true or false, got {_kind(operand)}")]


def _check_cidr(operand: object, path: str) -> list[Problem]:
    if not isinstance(operand, str):
        return [Problem(path, f"cidr takes a string such as \"10.0.0.0/24\", got {_kind(operand)}")]
    try:
        ipaddress.ip_network(operand, strict=False)
    except ValueError:
        return [Problem(path, f"{_name(operand)} is not an IPv4 or IPv6 network")]
    return []


def _check_numeric(operand: object, path: str) -> list[Problem]:
    """One condition (``[">", 0]``), or a lower and an upper bound (``[">", 0, "<=", 5]``)."""
    if not _is_array(operand) or len(operand) not in (2, 4):
        count = f" of {len(operand)} items" if _is_array(operand) else ""
        return [Problem(path, f'numeric takes one or two conditions, such as [">", 0, "<=", 5]; '
                              f"got {_kind(operand)}{count}")]
    items = operand
    problems: list[Problem] = []
    for i in range(0, len(items), 2):
        operator, bound = items[i], items[i + 1]
        if not (isinstance(operator, str) and operator in _NUMERIC_OPERATORS):
            problems.append(Problem(f"{path}[{i}]", f"unknown numeric operator {_kind(operator)}; "
                                                    "use =, <, <=, > or >="))
        if not _is_finite_number(bound):
            problems.append(Problem(f"{path}[{i + 1}]", f"a numeric bound is a finite number, got {_kind(bound)}"))
    if problems or len(items) == 2:
        return problems
    return _check_range(items, path)


def _check_range(items: Sequence[Any], path: str) -> list[Problem]:
    """Two well-formed conditions: they must be one lower and one upper bound that some number satisfies."""
    (op1, n1), (op2, n2) = (items[0], items[1]), (items[2], items[3])
    if "=" in (op1, op2):
        return [Problem(path, "'=' stands alone; it cannot be combined with another condition")]
    if (op1 in _LOWER) == (op2 in _LOWER):
        return [Problem(path, "a range needs one lower bound (> or >=) and one upper bound (< or <=)")]
    (low_op, low), (high_op, high) = ((op1, n1), (op2, n2)) if op1 in _LOWER else ((op2, n2), (op1, n1))
    if low > high:
        return [Problem(path, f"the lower bound {low!r} is above the upper bound {high!r}")]
    if low == high and (low_op == ">" or high_op == "<"):
        return [Problem(path, f"no number is {low_op} {low!r} and {high_op} {high!r}")]
    return []


_ANYTHING_BUT_FORMS: Final = ("prefix", "suffix", "equals-ignore-case", "wildcard")


def _check_anything_but(operand: object, path: str) -> list[Problem]:
    if isinstance(operand, str) or _is_finite_number(operand):
        return []
    if _is_array(operand):
        return _check_anything_but_values(operand, path)
    if isinstance(operand, Mapping):
        return _check_anything_but_form(operand, path)
    return [Problem(path, "anything-but takes a string, a number, an array of only strings or only numbers, "
                          f"or an object with one of {', '.join(_ANYTHING_BUT_FORMS)}; got {_kind(operand)}")]


def _check_anything_but_values(values: Sequence[object], path: str) -> list[Problem]:
    if not values:
        return [Problem(path, "anything-but needs at least one value")]
    problems = [Problem(f"{path}[{i}]", f"anything-but lists hold strings or numbers, got {_kind(v)}")
                for i, v in enumerate(values) if not (isinstance(v, str) or _is_finite_number(v))]
    if not problems and len({isinstance(v, str) for v in values}) > 1:
        problems.append(Problem(path, "anything-but lists hold only strings or only numbers, not both"))
    return problems


def _check_anything_but_form(form: Mapping[Any, Any], path: str) -> list[Problem]:
    if len(form) != 1:
        return [Problem(path, f"anything-but takes an object with exactly one of "
                              f"{', '.join(_ANYTHING_BUT_FORMS)}; got {len(form)} keys")]
    ((name, inner),) = form.items()
    if name not in _ANYTHING_BUT_FORMS:
        return [Problem(path, f"anything-but cannot take {_name(name)}; use one of {', '.join(_ANYTHING_BUT_FORMS)}")]
    where = f"{path}.{name}"
    strings: Sequence[object] = inner if _is_array(inner) else [inner]
    if _is_array(inner) and not inner:
        return [Problem(where, f"anything-but {name} needs at least one string")]
    problems: list[Problem] = []
    for i, text in enumerate(strings):
        at = f"{where}[{i}]" if _is_array(inner) else where
        if not isinstance(text, str):
            problems.append(Problem(at, f"anything-but {name} takes strings, got {_kind(text)}"))
        elif name in ("prefix", "suffix") and not text:
            problems.append(Problem(at, f"an empty anything-but {name} would exclude every string"))
        elif name == "wildcard":
            problems += _check_wildcard(text, at)
    return problems


_OPERAND_CHECKS: Final[dict[str, Callable[[object, str], list[Problem]]]] = {
    "prefix": lambda operand, path: _check_affix("prefix", operand, path),
    "suffix": lambda operand, path: _check_affix("suffix", operand, path),
    "equals-ignore-case": _check_string,
    "wildcard": _check_wildcard,
    "anything-but": _check_anything_but,
    "numeric": _check_numeric,
    "exists": _check_exists,
    "cidr": _check_cidr,
}


def _wildcard_segments(text: str) -> tuple[str, ...]:
    """The literal pieces between unescaped stars; raises ValueError(reason) when malformed.

    ``a*b\\*c`` gives ``("a", "b*c")``. Shared by validation and compilation so the two never disagree.
    """
    segments: list[str] = []
    current: list[str] = []
    after_star = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            escaped = text[i + 1:i + 2]
            if escaped not in ("*", "\\"):
                raise ValueError("in a wildcard a backslash may only escape '*' or another backslash")
            current.append(escaped)
            after_star = False
            i += 2
            continue
        if char == "*":
            if after_star:
                raise ValueError("a wildcard may not have two '*' in a row")
            segments.append("".join(current))
            current = []
            after_star = True
        else:
            current.append(char)
            after_star = False
        i += 1
    segments.append("".join(current))
    return tuple(segments)


# --------------------------------------------------------------------------------------------
# Compilation and matching (inputs here have passed validation)
# --------------------------------------------------------------------------------------------


class _Absent:
    """The value of a field the event does not have; distinct from None, which is JSON null."""

    __slots__ = ()


_ABSENT: Final = _Absent()


def _leaves(values: Sequence[Any]) -> Iterator[Any]:
    """The elements of a possibly nested event array, depth first, without recursion."""
    stack: list[Iterator[Any]] = [iter(values)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list | tuple):
                stack.append(iter(item))
                break
            yield item
        else:
            stack.pop()


class _Leaf:
    """The compiled matcher array of one field: exact values in sets, everything else as predicates."""

    __slots__ = ("strings", "folded", "numbers", "true", "false", "null", "predicates",
                 "if_present", "if_absent")

    def __init__(self, matchers: Sequence[Any]) -> None:
        strings: set[str] = set()
        folded: set[str] = set()
        numbers: set[int | float] = set()
        literals: set[object] = set()
        predicates: list[_Predicate] = []
        exists: set[bool] = set()
        for matcher in matchers:
            if isinstance(matcher, Mapping):
                ((name, operand),) = matcher.items()
                if name == "exists":
                    exists.add(operand)
                elif name == "equals-ignore-case":
                    folded.add(operand.casefold())
                else:
                    predicates.append(_BUILDERS[name](operand))
            elif isinstance(matcher, str):
                strings.add(matcher)
            elif matcher is None or isinstance(matcher, bool):
                literals.add(matcher)
            else:
                numbers.add(matcher)
        self.strings = frozenset(strings)
        self.folded = frozenset(folded)
        self.numbers = frozenset(numbers)
        self.true, self.false, self.null = True in literals, False in literals, None in literals
        self.predicates = tuple(predicates)
        self.if_present, self.if_absent = True in exists, False in exists

    def match(self, value: Any) -> bool:
        """Does the field's value (``_ABSENT`` when missing) satisfy any of the matchers?"""
        kind = type(value)
        if kind is str or kind is int or kind is float or kind is bool or value is None:
            return self.if_present or self.accepts(value)  # the common cases, tested by exact type first
        if value is _ABSENT or isinstance(value, Mapping):
            return self.if_absent
        if isinstance(value, list | tuple):
            return self.match_array(value)
        return self.if_present or self.accepts(value)

    def match_array(self, values: Sequence[Any]) -> bool:
        """Any leaf element matching will do; an array without leaves is no value at all."""
        has_leaves = False
        for item in _leaves(values):
            if type(item) is not str and isinstance(item, Mapping):
                continue
            if self.if_present or self.accepts(item):
                return True
            has_leaves = True
        return self.if_absent if not has_leaves else False

    def accepts(self, value: Any) -> bool:
        """Does one present leaf value satisfy any matcher other than ``exists``?"""
        if isinstance(value, str):
            if value in self.strings or (self.folded and value.casefold() in self.folded):
                return True
        elif isinstance(value, bool):
            if self.true if value else self.false:
                return True
        elif isinstance(value, int | float):
            if value in self.numbers:
                return True
        elif value is None and self.null:
            return True
        for predicate in self.predicates:
            if predicate(value):
                return True
        return False


class _Node:
    """A compiled pattern object: every field must match, and one alternative of every ``$or``."""

    __slots__ = ("fields", "alternatives", "when_absent")

    def __init__(self, fields: tuple[tuple[str, _Leaf | _Node], ...],
                 alternatives: tuple[tuple[_Node, ...], ...]) -> None:
        self.fields = fields
        self.alternatives = alternatives
        # Whether this object matches where the event has nothing: decided once, not per event.
        self.when_absent = self.match_object({})

    def match_object(self, event: Mapping[str, Any]) -> bool:
        for key, child in self.fields:
            if not child.match(event.get(key, _ABSENT)):
                return False
        if not self.alternatives:
            return True
        return all(any(alternative.match_object(event) for alternative in group)
                   for group in self.alternatives)

    def match(self, value: Any) -> bool:
        """Match the value of the field this object describes: an object, or an array of objects."""
        if isinstance(value, dict | Mapping):
            return self.match_object(value)
        if isinstance(value, list | tuple):
            objects = [item for item in _leaves(value) if isinstance(item, Mapping)]
            if objects:
                return any(self.match_object(item) for item in objects)
        return self.when_absent


def _compile_node(pattern: Mapping[str, Any]) -> _Node:
    fields: list[tuple[str, _Leaf | _Node]] = []
    alternatives: list[tuple[_Node, ...]] = []
    for key, value in pattern.items():
        if key == _OR:
            alternatives.append(tuple(_compile_node(alternative) for alternative in value))
        elif isinstance(value, Mapping):
            fields.append((key, _compile_node(value)))
        else:
            fields.append((key, _Leaf(value)))
    return _Node(tuple(fields), tuple(alternatives))


def _strings(operand: str | Sequence[str]) -> tuple[str, ...]:
    return (operand,) if isinstance(operand, str) else tuple(operand)


def _prefix(operand: str | Mapping[str, str]) -> _Predicate:
    if isinstance(operand, str):
        return lambda value: isinstance(value, str) and value.startswith(operand)
    folded = operand["equals-ignore-case"].casefold()
    return lambda value: isinstance(value, str) and value.casefold().startswith(folded)


def _suffix(operand: str | Mapping[str, str]) -> _Predicate:
    if isinstance(operand, str):
        return lambda value: isinstance(value, str) and value.endswith(operand)
    folded = operand["equals-ignore-case"].casefold()
    return lambda value: isinstance(value, str) and value.casefold().endswith(folded)


def _glob(text: str) -> Callable[[str], bool]:
    """A wildcard as a test on strings, in linear time and without regular expressions.

    The first piece must be a prefix and the last a suffix; each middle piece is then found leftmost,
    which is optimal for patterns whose only operator is ``*``. Having no regex also means no
    catastrophic backtracking on patterns such as ``*a*a*a*a*b``.
    """
    segments = _wildcard_segments(text)
    if len(segments) == 1:
        exact = segments[0]
        return lambda value: value == exact
    first, middle, last = segments[0], segments[1:-1], segments[-1]
    shortest = sum(len(segment) for segment in segments)

    def match(value: str) -> bool:
        if len(value) < shortest or not value.startswith(first) or not value.endswith(last):
            return False
        position, end = len(first), len(value) - len(last)
        for segment in middle:
            found = value.find(segment, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True

    return match


def _wildcard(operand: str) -> _Predicate:
    test = _glob(operand)
    return lambda value: isinstance(value, str) and test(value)


def _numeric(operand: Sequence[Any]) -> _Predicate:
    """A closed or open interval; ``=`` is the interval holding one number."""
    low, high = -math.inf, math.inf
    low_open = high_open = False
    for i in range(0, len(operand), 2):
        operator, bound = operand[i], operand[i + 1]
        if operator in ("=", ">", ">="):
            low, low_open = bound, operator == ">"
        if operator in ("=", "<", "<="):
            high, high_open = bound, operator == "<"

    def match(value: Any) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below

    return match


def _cidr(operand: str) -> _Predicate:
    network = ipaddress.ip_network(operand, strict=False)

    def match(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        return address.version == network.version and address in network

    return match


def _anything_but(operand: Any) -> _Predicate:
    if isinstance(operand, Mapping):
        return _anything_but_form(operand)
    values = [operand] if isinstance(operand, str) or _is_number(operand) else list(operand)
    strings = frozenset(v for v in values if isinstance(v, str))
    numbers = frozenset(v for v in values if not isinstance(v, str))

    def match(value: Any) -> bool:
        if isinstance(value, str):
            return value not in strings
        if _is_number(value):
            return value not in numbers
        return True

    return match


def _anything_but_form(form: Mapping[str, Any]) -> _Predicate:
    """anything-but prefix / suffix / equals-ignore-case / wildcard: strings only, none of the given."""
    ((name, operand),) = form.items()
    texts = _strings(operand)
    test: Callable[[str], bool]
    if name == "prefix":
        test = lambda value: not value.startswith(texts)  # noqa: E731
    elif name == "suffix":
        test = lambda value: not value.endswith(texts)  # noqa: E731
    elif name == "equals-ignore-case":
        folded = frozenset(text.casefold() for text in texts)
        test = lambda value: value.casefold() not in folded  # noqa: E731
    else:
        globs = tuple(_glob(text) for text in texts)
        test = lambda value: not any(glob(value) for glob in globs)  # noqa: E731
    return lambda value: isinstance(value, str) and test(value)


_BUILDERS: Final[dict[str, Callable[[Any], _Predicate]]] = {
    "prefix": _prefix,
    "suffix": _suffix,
    "wildcard": _wildcard,
    "anything-but": _anything_but,
    "numeric": _numeric,
    "cidr": _cidr,
}
