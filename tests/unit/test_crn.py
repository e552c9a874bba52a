from __future__ import annotations

import pytest

from charter.domain.crn import CRN
from charter.errors import ValidationError


def test_crn_round_trips_through_its_text_form() -> None:
    crn = CRN("ml-dev", "registry", "model-package", "churn", "2")
    assert str(crn) == "crn:charter:ml-dev:registry:model-package/churn/2"
    assert CRN.parse(str(crn)) == crn


def test_crn_without_version_has_two_path_segments() -> None:
    assert str(CRN("management", "org", "account", "ml-dev")) == "crn:charter:management:org:account/ml-dev"


@pytest.mark.parametrize("text", [
    "arn:aws:s3:::bucket", "crn:charter:ml-dev:registry", "crn:charter:ml-dev:nosuch:thing/x",
    "crn:charter:ml-dev:registry:a/b/c/d", "crn:charter::registry:group/x",
])
def test_malformed_crn_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        CRN.parse(text)


def test_crn_components_cannot_smuggle_separators() -> None:
    with pytest.raises(ValidationError):
        CRN("ml-dev", "registry", "group", "a/b")
