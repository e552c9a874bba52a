"""Reading a pipeline document: YAML without aliases, then the domain's checks."""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from charter.domain.pipelines import PipelineDefinition, definition_from_dict
from charter.errors import TooLarge, ValidationError

MAX_DEFINITION_BYTES = 256 * 1024
# libyaml's parser when PyYAML was built with it (the wheels are): the same safe loader, in C.
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_document(text: str) -> object:
    if len(text.encode()) > MAX_DEFINITION_BYTES:
        raise TooLarge(f"a pipeline definition holds at most {MAX_DEFINITION_BYTES} bytes",
                       limit=MAX_DEFINITION_BYTES)
    try:
        for event in yaml.parse(text, Loader=SAFE_LOADER):
            if isinstance(event, yaml.AliasEvent):
                raise ValidationError("pipeline: YAML aliases (*name) are not allowed", field="pipeline")
        return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        raise ValidationError(f"pipeline: not valid YAML: {error}", field="pipeline") from None


def load_definition(text: str, code: Mapping[str, bytes] | None = None, *,
                    name: str | None = None) -> PipelineDefinition:
    """The validated definition in ``text``; with ``code``, its entry points checked against it."""
    return definition_from_dict(parse_document(text), code, name=name)
