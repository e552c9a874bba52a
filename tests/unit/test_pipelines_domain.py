from __future__ import annotations

import pytest

from charter.domain.pipelines import (
    InputKind,
    PipelineDefinition,
    Step,
    StepKind,
    cache_key,
    definition_from_dict,
    entry_points_in,
    parse_input,
    resolve_defaults,
    resolve_parameters,
)
from charter.errors import ValidationError
from charter.services.pipeline_spec import load_definition
from tests.pipelines_support import CODE, DEFINITION


def _doc(*steps: dict[str, object], parameters: dict[str, object] | None = None) -> dict[str, object]:
    return {"name": "p", "parameters": parameters or {}, "steps": list(steps)}


def _step(name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "entry_point": "steps:prepare", **extra}


def test_the_example_definition_is_valid_against_its_code() -> None:
    definition = load_definition(DEFINITION, CODE)
    assert [s.name for s in definition.steps] == ["prepare", "train", "gate", "register"]
    assert definition.step("gate").kind is StepKind.CONDITION


def test_a_cycle_is_refused_naming_the_steps_along_it() -> None:
    doc = _doc(_step("a", inputs={"x": "step:c.out"}, outputs=["out"]),
               _step("b", inputs={"x": "step:a.out"}, outputs=["out"]),
               _step("c", inputs={"x": "step:b.out"}, outputs=["out"]))
    with pytest.raises(ValidationError, match="cycle") as refused:
        definition_from_dict(doc)
    assert set(refused.value.details["cycle"]) == {"a", "b", "c"}
    assert "a -> " in refused.value.message or "b -> " in refused.value.message


def test_an_input_from_a_missing_step_is_refused_by_its_path() -> None:
    with pytest.raises(ValidationError, match=r"steps\[0\]\.inputs\.x: no step named 'ghost'"):
        definition_from_dict(_doc(_step("a", inputs={"x": "step:ghost.out"})))


def test_an_input_naming_an_output_its_step_does_not_declare_is_refused() -> None:
    with pytest.raises(ValidationError, match="declares no output 'model'"):
        definition_from_dict(_doc(_step("a", outputs=["table"]), _step("b", inputs={"x": "step:a.model"})))


def test_an_unknown_parameter_is_refused_by_its_path() -> None:
    with pytest.raises(ValidationError, match=r"steps\[0\]\.inputs\.n: unknown parameter 'rows'"):
        definition_from_dict(_doc(_step("a", inputs={"n": "param:rows"})))


def test_an_entry_point_the_code_does_not_define_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"steps\[0\]\.entry_point: unknown entry point 'steps:fit'"):
        definition_from_dict(_doc({"name": "a", "entry_point": "steps:fit"}), CODE)


def test_an_entry_point_in_a_module_the_code_lacks_is_refused() -> None:
    with pytest.raises(ValidationError, match="the code has no module 'os'"):
        definition_from_dict(_doc({"name": "a", "entry_point": "os:system"}), CODE)


def test_entry_points_are_found_in_packages_too() -> None:
    assert "pkg.more:helper" in entry_points_in(CODE)


def test_a_duplicate_step_name_is_refused_naming_both_places() -> None:
    with pytest.raises(ValidationError, match=r"steps\[1\]\.name: .* already declared at steps\[0\]"):
        definition_from_dict(_doc(_step("a"), _step("a")))


def test_a_bad_input_reference_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"steps\[0\]\.inputs\.x"):
        definition_from_dict(_doc(_step("a", inputs={"x": "file:/etc/passwd"})))


def test_a_dataset_reference_names_account_name_and_version() -> None:
    ref = parse_input("dataset:data-governance/bank-marketing@3", "x")
    assert (ref.kind, ref.account, ref.name, ref.version) == (InputKind.DATASET, "data-governance",
                                                              "bank-marketing", 3)


def test_yaml_aliases_are_refused() -> None:
    with pytest.raises(ValidationError, match="aliases"):
        load_definition("name: p\nx: &a 1\nsteps: [{name: a, entry_point: 's:f', retries: *a}]")


def test_layers_put_independent_branches_side_by_side() -> None:
    doc = _doc(_step("load", outputs=["t"]),
               _step("left", inputs={"t": "step:load.t"}, outputs=["o"]),
               _step("right", inputs={"t": "step:load.t"}, outputs=["o"]),
               _step("join", inputs={"l": "step:left.o", "r": "step:right.o"}))
    assert definition_from_dict(doc).layers() == [["load"], ["left", "right"], ["join"]]


def test_parameters_refuse_unknown_names_and_need_the_required_ones() -> None:
    definition = definition_from_dict(_doc(_step("a"), parameters={"target": None, "depth": 3}))
    with pytest.raises(ValidationError, match="unknown parameter 'dpeth'"):
        resolve_parameters(definition, {"target": "y", "dpeth": "4"})
    with pytest.raises(ValidationError, match="parameter 'target' is required"):
        resolve_parameters(definition, {})
    assert resolve_parameters(definition, {"target": "y"}) == {"target": "y", "depth": "3"}


def test_a_pipelines_own_values_must_be_parameters_it_declares_and_may_leave_required_ones_open() -> None:
    definition = definition_from_dict(_doc(_step("a"), parameters={"target": None, "depth": 3}))
    with pytest.raises(ValidationError, match="unknown parameter 'dpeth'") as refused:
        resolve_defaults(definition, {"dpeth": "4"})
    assert refused.value.details["field"] == "defaults.dpeth"
    assert resolve_defaults(definition, {"depth": "5"}) == {"depth": "5"}


def test_the_cache_key_changes_with_the_code_or_an_input_and_only_then() -> None:
    step = Step("train", StepKind.TRAINING, "steps:train")
    key = cache_key(step, "c" * 64, {"table": "a" * 64, "n": "param:1"})
    assert key == cache_key(step, "c" * 64, {"n": "param:1", "table": "a" * 64})
    assert key != cache_key(step, "d" * 64, {"table": "a" * 64, "n": "param:1"})
    assert key != cache_key(step, "c" * 64, {"table": "b" * 64, "n": "param:1"})
    other = Step("train", StepKind.TRAINING, "steps:fit")
    assert key != cache_key(other, "c" * 64, {"table": "a" * 64, "n": "param:1"})


def test_a_definition_built_in_python_is_checked_the_same_way() -> None:
    from charter.domain.pipelines import InputRef, validate

    definition = PipelineDefinition("p", (Step("a", StepKind.GENERIC, "steps:prepare",
                                               {"x": InputRef(InputKind.PARAM, "missing")}),))
    with pytest.raises(ValidationError, match="unknown parameter 'missing'"):
        validate(definition)
