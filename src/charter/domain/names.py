"""Names of things a user creates: short, lowercase, safe in a CRN, a URL path and a file name."""

from __future__ import annotations

import re

from charter.errors import ValidationError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value) or value.endswith("-"):
        raise ValidationError(
            f"invalid {what} name {value!r}: use 1-63 lowercase letters, digits and '-', "
            "starting with a letter",
            field=what,
            value=str(value),
        )
    return value
