"""What a step's code imports, read from its source without running it.

The local executor forks a step from one of two warm servers: the one that preloaded the heavy
modules real steps use (numpy, scikit-learn...), whose size makes every fork, first write and exit
of a child dearer, or a bare one. A step goes to the bare server only when its entry point's module,
and every module of the template's own code it imports (followed through the code directory), import
nothing but standard-library modules none of which is preloaded. Anything else goes to the preloaded
server, and so does what cannot be read statically (an import by name at run time, a module that
does not parse or cannot be found): the bare server is an optimisation, never a guess that could
make a real step slower.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

_DYNAMIC = frozenset({"__import__", "import_module", "exec", "eval"})


def _source(code_dir: Path, module: str) -> Path | None:
    """The file of ``module`` inside ``code_dir`` (a module or a package), if it is there."""
    base = code_dir.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _packages(module: str) -> Iterator[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing a module runs its packages first."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


def _imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[str | None]:
    """The absolute names ``tree`` imports; None for an import this reading cannot name."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    yield None
                    continue
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                name = ".".join(filter(None, [base, node.module]))
            else:
                name = node.module or ""
            if not name:
                yield None
                continue
            yield name
            # ``from pkg import x``: x may be a submodule of pkg
            yield from (f"{name}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if called in _DYNAMIC:
                yield None


def _preloaded(name: str, preload: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") or p.startswith(name + ".") for p in preload)


def needs_preload(code_dir: Path, entry_point: str, preload: tuple[str, ...]) -> bool:
    """Whether the step ``entry_point`` (``module:function``) of the code in ``code_dir`` may use
    what the server preloads ``preload``: False only when everything it imports, through the
    template's own modules, is in the standard library and not preloaded."""
    if not preload:
        return False
    root = code_dir.resolve()
    module = entry_point.partition(":")[0]
    if not module:
        return True
    seen: set[str] = set()
    todo = list(_packages(module))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _source(root, name)
        if path is None:
            top = name.partition(".")[0]
            if _source(root, top) is not None:
                continue  # a name inside the template's package that is not a module (``from pkg import f``)
            if top not in sys.stdlib_module_names or _preloaded(name, preload):
                return True
            continue
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (OSError, SyntaxError, ValueError):
            return True
        for imported in _imported(tree, name, path.name == "__init__.py"):
            if imported is None:
                return True
            todo.extend(_packages(imported))
    return False
