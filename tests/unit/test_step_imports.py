"""Which fork server a step goes to: read from what its code imports, never from running it."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.adapters.executors.imports import needs_preload

PRELOAD = ("numpy", "sklearn.ensemble", "xml.dom.minidom")


def code(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize("source", [
    "import json, os\nfrom pathlib import Path\n",
    "def f():\n    import csv\n",
    "from collections import abc\n",
])
def test_a_step_importing_only_unpreloaded_standard_library_modules_goes_to_the_bare_server(
        tmp_path: Path, source: str) -> None:
    assert not needs_preload(code(tmp_path, {"steps.py": source}), "steps:f", PRELOAD)


@pytest.mark.parametrize("source", [
    "import numpy as np\n",
    "def train():\n    from sklearn.ensemble import RandomForestClassifier\n",
    "import sklearn\n",  # a package part of which is preloaded
    "import xml.dom.minidom\n",  # preloaded although standard
    "import pandas\n",  # not preloaded, but may import what is
    "import importlib\nmod = importlib.import_module('numpy')\n",  # cannot be read statically
    "m = __import__('numpy')\n",
    "def broken(:\n",  # does not parse: the step will fail, from either server
])
def test_a_step_that_may_use_the_preload_goes_to_the_preloaded_server(tmp_path: Path, source: str) -> None:
    assert needs_preload(code(tmp_path, {"steps.py": source}), "steps:f", PRELOAD)


def test_the_templates_own_modules_are_followed(tmp_path: Path) -> None:
    root = code(tmp_path, {"steps.py": "from lib.helpers import prepare\nfrom . import sibling\n",
                           "lib/__init__.py": "", "lib/helpers.py": "from .model import fit\n",
                           "lib/model.py": "import sklearn.ensemble\n", "sibling.py": "import json\n",
                           "light.py": "from lib import helpers\n", "plain.py": "import sibling\nimport lib\n"})
    assert needs_preload(root, "steps:f", PRELOAD)
    assert needs_preload(root, "light:f", PRELOAD)  # lib.helpers -> lib.model -> sklearn
    assert not needs_preload(root, "plain:f", PRELOAD)
    assert not needs_preload(root, "sibling:f", PRELOAD)


def test_a_package_is_read_with_its_parents(tmp_path: Path) -> None:
    root = code(tmp_path, {"pkg/__init__.py": "import numpy\n", "pkg/steps.py": "import json\n"})
    assert needs_preload(root, "pkg.steps:f", PRELOAD)


def test_an_entry_module_that_is_not_in_the_code_goes_to_the_preloaded_server(tmp_path: Path) -> None:
    assert needs_preload(tmp_path, "somewhere_else:f", PRELOAD)


def test_without_a_preload_there_is_one_server(tmp_path: Path) -> None:
    assert not needs_preload(code(tmp_path, {"steps.py": "import numpy\n"}), "steps:f", ())
