"""The console's pure parts: sealed session cookies, the launch form made from a JSON Schema, and
the SVG drawing of a DAG."""

from __future__ import annotations

import re
import time
from dataclasses import replace

from charter.entrypoints.console import forms
from charter.entrypoints.console.session import ConsoleSession, Sealer
from charter.entrypoints.console.svg import Node, Stage, chart, draw, timeline


def test_a_sealed_session_opens_with_its_key_only() -> None:
    session = replace(ConsoleSession.anonymous(60), token="cht_abc_secret")
    sealed = Sealer(b"k" * 32).seal(session)
    assert "secret" not in sealed
    assert Sealer(b"k" * 32).open(sealed) == session
    assert Sealer(b"other-key").open(sealed) is None


def test_a_tampered_cookie_is_no_session() -> None:
    sealed = Sealer(b"k" * 32).seal(ConsoleSession.anonymous(60))
    flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    assert Sealer(b"k" * 32).open(flipped) is None
    assert Sealer(b"k" * 32).open("not base64 at all!") is None


def test_an_expired_session_is_no_session() -> None:
    session = replace(ConsoleSession.anonymous(60), expires=time.time() - 1)
    assert Sealer(b"k" * 32).open(Sealer(b"k" * 32).seal(session)) is None


def test_the_csrf_check_wants_the_sessions_own_token() -> None:
    session = ConsoleSession.anonymous(60)
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok("guess") and not session.csrf_ok(None) and not session.csrf_ok("")


def test_the_launch_form_has_a_typed_field_per_schema_property() -> None:
    schema = {"type": "object", "required": ["dataset"], "properties": {
        "dataset": {"type": "string", "description": "the dataset"},
        "max_depth": {"type": "integer", "default": 5},
        "mode": {"enum": ["fast", "full"]},
        "balanced": {"type": "boolean"},
        "features": {"type": "array", "items": {"type": "string"}}}}
    by_name = {f.name: f for f in forms.fields(schema)}
    assert by_name["dataset"].required and by_name["dataset"].kind == "text"
    assert (by_name["max_depth"].kind, by_name["max_depth"].default) == ("number", "5")
    assert by_name["mode"].choices == ("fast", "full")
    assert by_name["balanced"].choices == ("true", "false")
    assert by_name["features"].kind == "json"


def test_empty_launch_fields_are_left_to_the_schemas_defaults() -> None:
    fields = forms.fields({"properties": {"a": {"type": "string"}, "b": {"type": "integer", "default": 3}}})
    assert forms.values(fields, {"a": "x", "b": " "}) == {"a": "x"}


def test_a_dag_is_drawn_with_a_box_per_step_and_an_arrow_per_dependency() -> None:
    picture = draw([[Node("a", "a", state="Succeeded")], [Node("b", "b", state="Running"), Node("c", "<c>")]],
                   [("a", "b"), ("a", "c")], "run")
    assert picture.count("<rect") == 3 and picture.count('class="edge"') == 2
    assert 'class="node state-running"' in picture
    assert "&lt;c&gt;" in picture and "<c>" not in picture


def test_a_deployment_timeline_has_the_stages_in_order_joined_by_arrows_and_the_current_one_marked() -> None:
    names = ("deploy-test", "integration-tests", "approve-prod", "deploy-prod", "smoke-prod")
    states = ("Succeeded", "Succeeded", "AwaitingApproval", "Pending", "Pending")
    picture = timeline([Stage(n, s, ("10:00:00 · 1.0 s", "<why>")) for n, s in zip(names, states, strict=True)],
                       "execution", current="approve-prod")
    found = re.findall(r'<g class="node state-(\w+)( current)?" data-stage="([\w-]+)"', picture)
    assert [(state, stage) for state, _, stage in found] == [(s.lower(), n) for n, s in zip(names, states, strict=True)]
    assert [stage for _, cur, stage in found if cur] == ["approve-prod"]
    assert picture.count('class="edge"') == 4
    assert "&lt;why&gt;" in picture and "<why>" not in picture


def test_a_chart_stacks_its_bars_and_breaks_its_lines_where_a_value_is_missing() -> None:
    bars = chart("traffic", ["a", "b", "c"], {"served": [2.0, 0.0, 3.0], "failed": [1.0, 0.0, 0.0]})
    assert bars.count('<rect class="series-0"') == 2 and bars.count('<rect class="series-1"') == 1
    assert ">3</text>" in bars  # the y axis reaches the tallest stack
    lines = chart("latency", ["a", "b", "c", "d"], {"p95": [5.0, None, 4.0, 6.0]}, kind="lines", unit=" ms")
    assert lines.count("<polyline") == 2 and lines.count("<circle") == 3
