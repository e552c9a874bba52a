"""The layers of DESIGN.md, enforced: inner layers never import outer ones."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "charter"
ORDER = ["domain", "services", "adapters", "entrypoints"]


def test_import_linter_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], capture_output=True, text=True,
                            cwd=SRC.parents[1])
    assert result.returncode == 0, result.stdout + result.stderr


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_module_imports_a_layer_outside_its_own() -> None:
    """A second check of our own, independent of import-linter's configuration."""
    offences = []
    for layer_index, layer in enumerate(ORDER):
        outer = [f"charter.{name}" for name in ORDER[layer_index + 1:]]
        if layer == "entrypoints":
            outer.append("charter.adapters")  # entrypoints reach adapters only through bootstrap
        else:
            outer.append("charter.bootstrap")
        for path in (SRC / layer).rglob("*.py"):
            for name in _imports(path):
                if any(name == o or name.startswith(o + ".") for o in outer):
                    offences.append(f"{path.relative_to(SRC)} imports {name}")
    assert offences == []


def test_the_domain_uses_only_the_standard_library_and_itself() -> None:
    allowed_prefixes = ("charter.domain", "charter.errors", "__future__")
    offences = []
    for path in (SRC / "domain").rglob("*.py"):
        for name in _imports(path):
            top = name.split(".")[0]
            if name.startswith(allowed_prefixes) or top in sys.stdlib_module_names:
                continue
            offences.append(f"{path.relative_to(SRC)} imports {name}")
    assert offences == []
