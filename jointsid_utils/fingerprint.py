"""The code a stage's builder can reach, as one hash, so that editing a builder rebuilds what it made.

A builder's fingerprint covers the module that defines it (and the modules of functions it closes over),
then every module of the same package those modules import, transitively: an ``import`` anywhere in a
module (inside functions too) counts, and importing ``a.b.c`` counts ``a`` and ``a.b`` as well, since
Python runs their ``__init__``. Each module is hashed as its syntax tree without docstrings, so a comment
or docstring edit does not rebuild, while any other edit to a helper two calls down does; a module the
builder cannot reach never does. Only source files are read (nothing is imported), and each file's
parsed form is kept per process until the file changes.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import sys
import sysconfig
from pathlib import Path
from typing import Any, Callable, Iterable

ALWAYS_FOLLOWED = ("jointsid_utils",)  # the study's package, reached from a test's or a bench's builder too
# The protocol itself decides where and whether to build, never what: editing it rebuilds nothing.
PROTOCOL = ("jointsid_utils.fingerprint", "jointsid_utils.stages", "jointsid_utils.store")


def code_fingerprint(*builders: Callable[..., Any]) -> str:
    """sha256 of the docstring-free source of every module the builders reach."""
    return _digest(reachable_modules(builders))


def reachable_modules(builders: Iterable[Callable[..., Any]]) -> dict[str, str]:
    """Module name -> hash of its source, for every module the builders reach."""
    return _closure({name for fn in builders for name in _defining_modules(fn, set()) if _is_project_module(name)})


def imports_fingerprint(modules: Iterable[str]) -> str:
    """The fingerprint of what code importing ``modules`` can run (a notebook's imports): their closure, widened
    to every module of each subpackage it enters, since a registry may import a sibling by name at run time."""
    closure = _closure(set(modules))
    subpackages = {tuple(name.split(".")[:2]) for name in closure if name.count(".") >= 2}
    siblings = {".".join((*sub, path.stem)) for sub in subpackages if (init := module_path(".".join(sub)))
                for path in init.parent.glob("*.py") if path.name != "__init__.py"}
    return _digest(_closure(set(closure) | siblings))


def _digest(modules: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(modules):
        digest.update(name.encode() + b"\0" + modules[name].encode() + b"\0")
    return digest.hexdigest()[:16]


def _closure(roots: set[str]) -> dict[str, str]:
    """Module name -> hash of its source, for ``roots`` and every module of their packages they import."""
    followed = {name.split(".")[0] for name in roots} | set(ALWAYS_FOLLOWED)
    found: dict[str, str] = {}
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name in found or name in PROTOCOL:
            continue
        path = module_path(name)
        if path is None:
            continue
        source_hash, imported = _parsed(str(path), *_stat(path))
        found[name] = source_hash
        todo.extend(m for m in _with_parents(imported, name, path) if m.split(".")[0] in followed)
    return found


def _defining_modules(fn: Any, seen: set[int]) -> list[str]:
    """The modules defining ``fn`` and the Python functions it closes over or binds (partials, methods); for
    a class, the modules defining it and its bases."""
    if id(fn) in seen:
        return []
    seen.add(id(fn))
    if isinstance(fn, functools.partial):
        parts = [fn.func, *fn.args, *fn.keywords.values()]
        return [m for part in parts if callable(part) for m in _defining_modules(part, seen)]
    if inspect.ismethod(fn):
        return _defining_modules(fn.__func__, seen)
    if inspect.isclass(fn):  # a class named by a registry (a quantizer): its module and its project bases'
        return [c.__module__ for c in fn.__mro__ if _is_project_module(c.__module__)]
    if not inspect.isfunction(fn):
        return []  # instances and built-ins: their code is a library's, or reached through imports
    names = [fn.__module__]
    for cell in fn.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if callable(value):
            names += _defining_modules(value, seen)
    return names


@functools.lru_cache(maxsize=1024)
def _is_project_module(name: str) -> bool:
    """A module of this project (the package, a test, a bench), not an installed library or the standard library."""
    path = _top_level_path(name.split(".")[0])
    if path is None:
        return False
    libraries = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    return not any(path.resolve().is_relative_to(Path(lib).resolve()) for lib in libraries)


def module_path(name: str) -> Path | None:
    """The source file of module ``name``, found from its top-level package's location without importing it."""
    top, *rest = name.split(".")
    base = _top_level_path(top)
    if base is None:
        return None
    if not rest:
        return base
    if base.name != "__init__.py":
        return None
    here = base.parent.joinpath(*rest)
    for candidate in (here.with_suffix(".py"), here / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _top_level_path(top: str) -> Path | None:
    module = sys.modules.get(top)
    origin = getattr(module, "__file__", None)
    if origin is None:
        import importlib.util

        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec is not None else None
    if origin is None or not origin.endswith(".py"):
        return None
    return Path(origin)


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=4096)
def _parsed(path: str, mtime_ns: int, size: int) -> tuple[str, tuple[tuple[str, tuple[str, ...], int], ...]]:
    """(hash of the docstring-free tree, imports as (module, names, level)); cached until the file changes."""
    tree = ast.parse(Path(path).read_text(), filename=path)
    imports = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [(alias.name, (), 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imports.append((node.module or "", tuple(alias.name for alias in node.names), node.level))
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            _drop_docstring(node)
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest(), tuple(imports)


def _drop_docstring(node: ast.AST) -> None:
    body = node.body  # type: ignore[attr-defined]
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]


def _with_parents(imports: tuple[tuple[str, tuple[str, ...], int], ...], importer: str, path: Path) -> list[str]:
    """Absolute names of the imported modules, their parent packages, and ``from x import sub`` submodules."""
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    names: list[str] = []
    for module, members, level in imports:
        if level:
            base = package.rsplit(".", level - 1)[0] if level > 1 else package
            module = f"{base}.{module}" if module else base
        parts = module.split(".")
        names += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        names += [f"{module}.{member}" for member in members if member != "*"]  # kept only where a file exists
    return names
