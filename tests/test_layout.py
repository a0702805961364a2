"""The package's structure: every import points down, no private names cross modules, lazy start-up.

The import graph is built from the source with ``ast`` (module-level *and* function-local imports,
since a circle through a deferred import is still a circle), so these tests need no import of the
package to find a cycle.
"""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "jaxhalo"
TESTS = Path(__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path, modules: dict[str, Path]):
    """Yield (target module, imported name or None, node, is_local) for every jaxhalo import in ``path``."""
    module = _module_name(path)
    tree = ast.parse(path.read_text())
    local = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "jaxhalo":
                    yield a.name, None, node, id(node) in local
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, path.name == "__init__.py")
            if target.split(".")[0] != "jaxhalo":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in modules:
                    yield sub, None, node, id(node) in local
                else:
                    yield target, a.name, node, id(node) in local


def test_import_graph_has_no_cycle():
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for m, path in modules.items():
        for target, _, node, _ in _imports(path, modules):
            assert target in modules, f"{path}:{node.lineno} imports {target}, which is not a jaxhalo module"
            if target != m:
                graph[m].add(target)
    # a lazily loaded package (an __init__.pyi stub) depends on every module its stub names
    for m, path in modules.items():
        stub = path.with_suffix(".pyi")
        if path.name == "__init__.py" and stub.exists():
            for node in ast.parse(stub.read_text()).body:
                if isinstance(node, ast.ImportFrom):
                    target = _resolve(node, m, True)
                    graph[m] |= {f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names}
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")
    assert len(order) == len(modules)


@pytest.mark.parametrize("where", ["jaxhalo", "tests"])
def test_no_private_name_is_imported_across_modules(where):
    modules = _modules()
    files = sorted(PKG.rglob("*.py")) if where == "jaxhalo" else sorted(TESTS.rglob("*.py"))
    bad = []
    for path in files:
        for target, name, node, _ in _imports(path, modules):
            last = (name or target.rsplit(".", 1)[-1])
            if last.startswith("_") and not last.startswith("__"):
                # a package's own private helper module (cli/_setup.py) may be imported inside that package
                inside = where == "jaxhalo" and _module_name(path).startswith(target.rsplit(".", 1)[0] + ".")
                if not (name is None and inside):
                    bad.append(f"{path.relative_to(PKG.parent)}:{node.lineno} imports {last} from {target}")
    assert not bad, "\n".join(bad)


def test_package_code_imports_from_defining_modules():
    """Inside jaxhalo a name is imported from the module that defines it, never through a package's
    lazy ``__init__`` (which would hide the real dependency from the import graph)."""
    modules = _modules()
    packages = {m for m, p in modules.items() if p.name == "__init__.py" and p.with_suffix(".pyi").exists()}
    bad = [f"{path.relative_to(PKG.parent)}:{node.lineno} imports {name} from package {target}"
           for path in sorted(PKG.rglob("*.py")) for target, name, node, _ in _imports(path, modules)
           if name is not None and target in packages and name != "__version__"]
    assert not bad, "\n".join(bad)


def test_function_local_imports_say_why():
    """A function-local import must defer something heavy, and say so in a comment on it or above it."""
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        for f in ast.walk(tree):
            if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            prev_import = False
            for stmt in f.body:
                is_imp = isinstance(stmt, (ast.Import, ast.ImportFrom))
                if is_imp and not prev_import:  # the first import of a block
                    here, above = lines[stmt.lineno - 1], lines[stmt.lineno - 2] if stmt.lineno > 1 else ""
                    if "#" not in here and not above.strip().startswith("#"):
                        bad.append(f"{path.relative_to(PKG.parent)}:{stmt.lineno}: {here.strip()}")
                prev_import = is_imp
    assert not bad, "function-local imports without a comment saying what they defer:\n" + "\n".join(bad)


def test_public_api_is_one_lazy_block():
    """Every name the stub lists resolves, ``__all__`` is exactly the stub's names, and importing the
    package or building the CLI parser loads no JAX (the start-up budget of the command line)."""
    code = (
        "import sys, jaxhalo, jaxhalo.cli\n"
        "jaxhalo.cli.build_parser()\n"
        "heavy = sorted(m for m in ('jax', 'numpyro', 'diffrax', 'matplotlib', 'arviz', 'flowjax', 'astropy') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "for n in jaxhalo.__all__: getattr(jaxhalo, n)\n"
        "print(len(jaxhalo.__all__))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    stub = ast.parse((PKG / "__init__.pyi").read_text())
    names = sorted({a.name for n in stub.body if isinstance(n, ast.ImportFrom) for a in n.names})
    assert int(out.stdout) == len(names)
    import jaxhalo

    assert sorted(jaxhalo.__all__) == names
    assert "noqa" not in (PKG / "__init__.py").read_text()


def test_subpackage_stubs_export_each_modules_all():
    """A lazy subpackage (``__init__.pyi``) names every module of the package and re-exports exactly
    each module's ``__all__``, so a public name added to a module cannot be missing from its package."""
    import importlib

    for stub_path in sorted(PKG.glob("*/__init__.pyi")):
        pkg = f"jaxhalo.{stub_path.parent.name}"
        stub = ast.parse(stub_path.read_text())
        listed_modules = {a.name for n in stub.body if isinstance(n, ast.ImportFrom) and n.level == 1 and not n.module
                          for a in n.names}
        on_disk = {p.stem for p in stub_path.parent.glob("*.py") if p.stem != "__init__"}
        assert listed_modules == on_disk, (pkg, on_disk ^ listed_modules)
        for n in stub.body:
            if isinstance(n, ast.ImportFrom) and n.module:
                module = importlib.import_module(f"{pkg}.{n.module}")
                assert {a.name for a in n.names} == set(module.__all__), f"{pkg}.{n.module}"
