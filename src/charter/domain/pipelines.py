"""Pipelines: DAGs of steps, their validation, and the state of their runs.

A definition comes from a dict (the service layer parses YAML) or is built in Python; every
problem found is named by its path in the document (``steps[2].inputs.data``). Entry points are
checked against the template's code files, parsed (never imported) here.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from charter.domain.crn import CRN
from charter.errors import InvalidTransition, ValidationError

MAX_STEPS = 500
MAX_RETRIES = 10
MAX_TIMEOUT_SECONDS = 7 * 86400
DEFAULT_TIMEOUT_SECONDS = 3600.0
_STEP_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENTRY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
_DATASET = re.compile(r"^(?:(?P<account>[a-z][a-z0-9-]{0,62})/)?(?P<name>[a-z][a-z0-9_-]{0,62})"
                      r"(?:@(?P<version>[1-9][0-9]{0,8}))?$")


class StepKind(StrEnum):
    PROCESSING = "processing"
    TRAINING = "training"
    EVALUATION = "evaluation"
    CONDITION = "condition"
    REGISTER_MODEL = "register-model"
    GENERIC = "generic"


class OutputKind(StrEnum):
    ARTIFACT = "artifact"
    METRICS = "metrics"


class InputKind(StrEnum):
    DATASET = "dataset"
    PARAM = "param"
    STEP = "step"


@dataclass(frozen=True, slots=True)
class InputRef:
    """``dataset:[account/]name[@version]``, ``param:name`` or ``step:step.output``."""

    kind: InputKind
    name: str
    output: str | None = None
    version: int | None = None
    account: str | None = None
    from_param: bool = False
    """``dataset:{param}``: the dataset is the one the parameter ``name`` names, at run time."""

    def __str__(self) -> str:
        if self.kind is InputKind.STEP:
            return f"step:{self.name}.{self.output}"
        if self.kind is InputKind.DATASET and self.from_param:
            return f"dataset:{{{self.name}}}"
        if self.kind is InputKind.DATASET:
            where = f"{self.account}/" if self.account else ""
            at = f"@{self.version}" if self.version else ""
            return f"dataset:{where}{self.name}{at}"
        return f"param:{self.name}"


def parse_input(text: str, path: str) -> InputRef:
    kind, sep, rest = text.partition(":") if isinstance(text, str) else ("", "", "")
    if not sep:
        raise ValidationError(f"{path}: an input is dataset:<name>[@v], param:<name> or "
                              f"step:<step>.<output>, not {text!r}", field=path)
    if kind == "param" and _IDENT.match(rest):
        return InputRef(InputKind.PARAM, rest)
    if kind == "step":
        step, dot, output = rest.partition(".")
        if dot and _STEP_NAME.match(step) and _IDENT.match(output):
            return InputRef(InputKind.STEP, step, output=output)
    if kind == "dataset" and rest.startswith("{") and rest.endswith("}") and _IDENT.match(rest[1:-1]):
        return InputRef(InputKind.DATASET, rest[1:-1], from_param=True)
    if kind == "dataset" and (m := _DATASET.match(rest)):
        version = m.group("version")
        return InputRef(InputKind.DATASET, m.group("name"), version=int(version) if version else None,
                        account=m.group("account"))
    raise ValidationError(f"{path}: {text!r} is not a valid input reference", field=path)


@dataclass(frozen=True, slots=True)
class Output:
    name: str
    kind: OutputKind = OutputKind.ARTIFACT


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    kind: StepKind
    entry_point: str
    inputs: Mapping[str, InputRef] = field(default_factory=dict)
    outputs: tuple[Output, ...] = ()
    retries: int = 0
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    after: tuple[str, ...] = ()
    """Steps this one waits for without taking their outputs (a condition's gate)."""

    @property
    def upstream(self) -> frozenset[str]:
        return frozenset({r.name for r in self.inputs.values() if r.kind is InputKind.STEP} | set(self.after))

    def output(self, name: str) -> Output | None:
        return next((o for o in self.outputs if o.name == name), None)


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    default: str | None = None
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True, slots=True)
class PipelineDefinition:
    name: str
    steps: tuple[Step, ...]
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    description: str = ""

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def layers(self) -> list[list[str]]:
        """Steps in layers: each layer depends only on the layers before it (names sorted)."""
        placed: dict[str, int] = {}
        remaining = {s.name: s.upstream for s in self.steps}
        out: list[list[str]] = []
        while remaining:
            ready = sorted(n for n, ups in remaining.items() if ups <= placed.keys())
            if not ready:
                raise ValidationError("the steps form a cycle", field="steps")
            out.append(ready)
            for n in ready:
                placed[n] = len(out) - 1
                del remaining[n]
        return out

    def downstream(self, name: str) -> set[str]:
        """Every step that depends on ``name``, directly or not."""
        found: set[str] = set()
        frontier = {name}
        while frontier:
            nxt = {s.name for s in self.steps if s.upstream & frontier} - found
            found |= nxt
            frontier = nxt
        return found


# --- from a document ---------------------------------------------------------------------------

def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{path}: expected a mapping", field=path)
    return value


def _text(value: Any, path: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ValidationError(f"{path}: expected a non-empty string", field=path)
    return value


def _parameters(doc: Any) -> dict[str, Parameter]:
    params: dict[str, Parameter] = {}
    for name, spec in _mapping(doc, "parameters").items():
        path = f"parameters.{name}"
        if not isinstance(name, str) or not _IDENT.match(name):
            raise ValidationError(f"{path}: a parameter name is an identifier", field=path)
        if isinstance(spec, Mapping):
            default = spec.get("default")
            description = _text(spec.get("description"), f"{path}.description", required=False)
        else:
            default, description = spec, ""
        if default is not None and not isinstance(default, str | int | float | bool):
            raise ValidationError(f"{path}.default: expected a scalar", field=f"{path}.default")
        params[name] = Parameter(name, None if default is None else _scalar(default), description)
    return params


def _scalar(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _outputs(doc: Any, path: str) -> tuple[Output, ...]:
    if doc is None:
        return ()
    items: list[Output] = []
    if isinstance(doc, Mapping):
        for name, kind in doc.items():
            items.append(Output(str(name), _output_kind(kind, f"{path}.{name}")))
    elif isinstance(doc, Sequence) and not isinstance(doc, str):
        for i, name in enumerate(doc):
            items.append(Output(_text(name, f"{path}[{i}]")))
    else:
        raise ValidationError(f"{path}: a list of names or a mapping of name to kind", field=path)
    for out in items:
        if not _IDENT.match(out.name):
            raise ValidationError(f"{path}.{out.name}: an output name is an identifier", field=path)
    if len({o.name for o in items}) != len(items):
        raise ValidationError(f"{path}: duplicate output names", field=path)
    return tuple(items)


def _output_kind(value: Any, path: str) -> OutputKind:
    try:
        return OutputKind(value)
    except ValueError:
        raise ValidationError(f"{path}: the kind is artifact or metrics, not {value!r}", field=path) from None


def _number(value: Any, path: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValidationError(f"{path}: expected a number from {low:g} to {high:g}", field=path)
    return float(value)


def _step(doc: Any, i: int) -> Step:
    path = f"steps[{i}]"
    spec = _mapping(doc, path)
    unknown = set(spec) - {"name", "kind", "entry_point", "inputs", "outputs", "retries", "timeout", "after"}
    if unknown:
        raise ValidationError(f"{path}: unknown field {sorted(unknown)[0]!r}", field=path)
    name = _text(spec.get("name"), f"{path}.name")
    if not _STEP_NAME.match(name):
        raise ValidationError(f"{path}.name: {name!r} is not a step name (lowercase letters, digits, _ "
                              "and -)", field=f"{path}.name")
    try:
        kind = StepKind(spec.get("kind", "generic"))
    except ValueError:
        raise ValidationError(f"{path}.kind: one of {', '.join(k.value for k in StepKind)}",
                              field=f"{path}.kind") from None
    entry = _text(spec.get("entry_point"), f"{path}.entry_point")
    if not _ENTRY.match(entry):
        raise ValidationError(f"{path}.entry_point: {entry!r} is not module:function",
                              field=f"{path}.entry_point")
    inputs: dict[str, InputRef] = {}
    for key, ref in _mapping(spec.get("inputs"), f"{path}.inputs").items():
        ipath = f"{path}.inputs.{key}"
        if not isinstance(key, str) or not _IDENT.match(key):
            raise ValidationError(f"{ipath}: an input name is an identifier", field=ipath)
        inputs[key] = parse_input(ref, ipath)
    after_doc = spec.get("after") or []
    if not isinstance(after_doc, list) or not all(isinstance(a, str) for a in after_doc):
        raise ValidationError(f"{path}.after: a list of step names", field=f"{path}.after")
    return Step(
        name=name, kind=kind, entry_point=entry, inputs=inputs,
        outputs=_outputs(spec.get("outputs"), f"{path}.outputs"),
        retries=int(_number(spec.get("retries", 0), f"{path}.retries", 0, MAX_RETRIES)),
        timeout_seconds=_number(spec.get("timeout", DEFAULT_TIMEOUT_SECONDS), f"{path}.timeout", 0.1,
                                MAX_TIMEOUT_SECONDS),
        after=tuple(after_doc))


def definition_from_dict(doc: Any, code: Mapping[str, bytes] | None = None, *,
                         name: str | None = None) -> PipelineDefinition:
    """The definition a parsed document declares, validated; with ``code`` (path -> bytes) the
    entry points are checked against it too. ``name`` stands in for a document that has none."""
    spec = _mapping(doc, "pipeline")
    unknown = set(spec) - {"name", "description", "parameters", "steps"}
    if unknown:
        raise ValidationError(f"unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    steps_doc = spec.get("steps")
    if not isinstance(steps_doc, list) or not steps_doc:
        raise ValidationError("steps: a pipeline has a non-empty list of steps", field="steps")
    if len(steps_doc) > MAX_STEPS:
        raise ValidationError(f"steps: at most {MAX_STEPS} steps", field="steps")
    definition = PipelineDefinition(
        name=_text(spec.get("name"), "name") if name is None or "name" in spec else name,
        description=_text(spec.get("description"), "description", required=False),
        parameters=_parameters(spec.get("parameters")),
        steps=tuple(_step(s, i) for i, s in enumerate(steps_doc)))
    validate(definition, code)
    return definition


# --- validation ----------------------------------------------------------------------------------

def validate(definition: PipelineDefinition, code: Mapping[str, bytes] | None = None) -> None:
    """Refuse duplicate steps, references to unknown steps, outputs or parameters, cycles (named),
    and, given the code, entry points it does not define."""
    index: dict[str, int] = {}
    for i, s in enumerate(definition.steps):
        if s.name in index:
            raise ValidationError(f"steps[{i}].name: a step named {s.name!r} is already declared at "
                                  f"steps[{index[s.name]}]", field=f"steps[{i}].name")
        index[s.name] = i
    for i, s in enumerate(definition.steps):
        for key, ref in s.inputs.items():
            path = f"steps[{i}].inputs.{key}"
            if (ref.kind is InputKind.PARAM or ref.from_param) and ref.name not in definition.parameters:
                raise ValidationError(f"{path}: unknown parameter {ref.name!r}", field=path)
            if ref.kind is InputKind.STEP:
                if ref.name not in index:
                    raise ValidationError(f"{path}: no step named {ref.name!r}", field=path)
                if ref.output is None or definition.steps[index[ref.name]].output(ref.output) is None:
                    raise ValidationError(f"{path}: step {ref.name!r} declares no output {ref.output!r}",
                                          field=path)
        for j, name in enumerate(s.after):
            if name not in index:
                raise ValidationError(f"steps[{i}].after[{j}]: no step named {name!r}",
                                      field=f"steps[{i}].after[{j}]")
    cycle = find_cycle(definition)
    if cycle:
        raise ValidationError(f"steps: the steps form a cycle: {' -> '.join(cycle)}", field="steps",
                              cycle=cycle)
    if code is not None:
        defined = entry_points_in(code)
        for i, s in enumerate(definition.steps):
            if s.entry_point not in defined:
                module = s.entry_point.partition(":")[0]
                where = (f"{module_path(module)} defines no function {s.entry_point.partition(':')[2]!r}"
                         if any(e.startswith(module + ":") for e in defined)
                         else f"the code has no module {module!r}")
                raise ValidationError(f"steps[{i}].entry_point: unknown entry point {s.entry_point!r}: "
                                      f"{where}", field=f"steps[{i}].entry_point")


def find_cycle(definition: PipelineDefinition) -> list[str]:
    """A cycle as the step names along it (first repeated at the end), or [] for a DAG."""
    ups = {s.name: sorted(s.upstream) for s in definition.steps}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        stack.append(name)
        for up in ups.get(name, []):
            if state.get(up) == 1:
                cycle = stack[stack.index(up):] + [up]
                return list(reversed(cycle))
            if up not in state and (found := visit(up)):
                return found
        stack.pop()
        state[name] = 2
        return []

    for s in definition.steps:
        if s.name not in state and (found := visit(s.name)):
            return found
    return []


def module_path(module: str) -> str:
    return module.replace(".", "/") + ".py"


def entry_points_in(code: Mapping[str, bytes]) -> set[str]:
    """``module:function`` for every top-level function of every Python file in ``code``."""
    found: set[str] = set()
    for path, content in code.items():
        if not path.endswith(".py"):
            continue
        parts = path[:-3].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not parts or not all(_IDENT.match(p) for p in parts):
            continue
        try:
            tree = ast.parse(content)
        except (SyntaxError, ValueError):
            continue
        module = ".".join(parts)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.add(f"{module}:{node.name}")
    return found


def dataset_of(ref: InputRef, parameters: Mapping[str, str]) -> InputRef:
    """A ``dataset:{param}`` input made concrete with the run's parameters."""
    if not ref.from_param:
        return ref
    value = parameters.get(ref.name, "")
    m = _DATASET.match(value)
    if m is None:
        raise ValidationError(f"parameter {ref.name!r}: {value!r} is not a dataset ([account/]name[@version])",
                              field=f"parameters.{ref.name}")
    version = m.group("version")
    return InputRef(InputKind.DATASET, m.group("name"), version=int(version) if version else None,
                    account=m.group("account"))


def resolve_parameters(definition: PipelineDefinition, given: Mapping[str, str]) -> dict[str, str]:
    """The run's parameters: the defaults overridden by ``given``; unknown or missing ones refused,
    and so is a parameter naming a dataset that is not a dataset's name."""
    for name in given:
        if name not in definition.parameters:
            known = ", ".join(sorted(definition.parameters)) or "none"
            raise ValidationError(f"unknown parameter {name!r} (the pipeline takes: {known})",
                                  field=f"parameters.{name}")
    out: dict[str, str] = {}
    for name, p in definition.parameters.items():
        value = given.get(name, p.default)
        if value is None:
            raise ValidationError(f"parameter {name!r} is required", field=f"parameters.{name}")
        out[name] = str(value)
    for s in definition.steps:
        for ref in s.inputs.values():
            if ref.from_param:
                dataset_of(ref, out)
    return out


def resolve_defaults(definition: PipelineDefinition, given: Mapping[str, str]) -> dict[str, str]:
    """Parameter values a pipeline is created with: each must be a parameter of the definition and
    a string, as a run's would; required ones may still be left to the run."""
    for name, value in given.items():
        if name not in definition.parameters:
            known = ", ".join(sorted(definition.parameters)) or "none"
            raise ValidationError(f"unknown parameter {name!r} (the pipeline takes: {known})",
                                  field=f"defaults.{name}")
        if not isinstance(value, str):
            raise ValidationError(f"parameter {name!r}: a string", field=f"defaults.{name}")
    return dict(given)


def definition_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cache_key(step: Step, code_digest: str, input_digests: Mapping[str, str]) -> str:
    """What a step's result depends on: its entry point, kind and outputs, the code, and the digest
    of every input. The same key means the earlier outputs may be reused."""
    doc = {"entry_point": step.entry_point, "kind": str(step.kind), "code": code_digest,
           "outputs": [[o.name, str(o.kind)] for o in step.outputs],
           "inputs": dict(sorted(input_digests.items()))}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def value_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- runs ------------------------------------------------------------------------------------------

class RunStatus(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    SUCCEEDED_NOT_REGISTERED = "SucceededNotRegistered"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.PENDING, RunStatus.RUNNING)


class StepStatus(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    SKIPPED = "Skipped"

    @property
    def finished(self) -> bool:
        return self not in (StepStatus.PENDING, StepStatus.RUNNING)


_RUN_MOVES: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.RUNNING: frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED,
                                  RunStatus.SUCCEEDED_NOT_REGISTERED}),
}


@dataclass(frozen=True, slots=True)
class StepState:
    name: str
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    """Output name -> SHA-256 of the blob in the account's artifact store."""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    cached: bool = False
    log_sha256: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": str(self.status), "attempts": self.attempts,
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "outputs": dict(self.outputs), "metrics": dict(self.metrics), "cached": self.cached,
                "log_sha256": self.log_sha256, "error": self.error}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> StepState:
        return StepState(
            d["name"], StepStatus(d["status"]), int(d["attempts"]),
            datetime.fromisoformat(d["started_at"]) if d.get("started_at") else None,
            datetime.fromisoformat(d["finished_at"]) if d.get("finished_at") else None,
            dict(d.get("outputs") or {}), dict(d.get("metrics") or {}), bool(d.get("cached")),
            d.get("log_sha256"), d.get("error"))


@dataclass(frozen=True, slots=True)
class Pipeline:
    account: str
    name: str
    definition: str
    """The document as given (YAML or JSON)."""
    digest: str
    code_sha256: str
    """The tar.gz of the template code, in the account's artifact store."""
    created_by: str
    created_at: datetime
    version: int = 1
    defaults: Mapping[str, str] = field(default_factory=dict)
    """Parameter values it was created with (a project's launch parameters), over the definition's
    defaults and under what a run is started with."""

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "pipelines", "pipeline", self.name)


@dataclass(frozen=True, slots=True)
class PipelineRun:
    id: str
    account: str
    pipeline: str
    definition: str
    digest: str
    code_sha256: str
    parameters: Mapping[str, str]
    started_by: str
    created_at: datetime
    steps: tuple[StepState, ...]
    status: RunStatus = RunStatus.PENDING
    reason: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested: bool = False

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "pipelines", "run", self.id)

    def step(self, name: str) -> StepState:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def with_step(self, state: StepState) -> PipelineRun:
        return replace(self, steps=tuple(state if s.name == state.name else s for s in self.steps))

    def moved(self, status: RunStatus, at: datetime, reason: str = "") -> PipelineRun:
        if status not in _RUN_MOVES.get(self.status, frozenset()):
            raise InvalidTransition(f"run {self.id} is {self.status}; it cannot become {status}",
                                    status=str(self.status), requested=str(status))
        return replace(self, status=status, reason=reason or self.reason,
                       started_at=at if status is RunStatus.RUNNING else self.started_at,
                       finished_at=at if status.finished else self.finished_at)


def new_run(run_id: str, pipeline: Pipeline, definition: PipelineDefinition, parameters: Mapping[str, str],
            started_by: str, at: datetime) -> PipelineRun:
    return PipelineRun(run_id, pipeline.account, pipeline.name, pipeline.definition, pipeline.digest,
                       pipeline.code_sha256, dict(parameters), started_by, at,
                       tuple(StepState(s.name) for s in definition.steps))
