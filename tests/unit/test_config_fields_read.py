"""Every config field is read somewhere: a field that nothing reads is a setting a user can change to no effect
(and a stage key that changes for nothing)."""

import ast
import dataclasses
import json
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]


def _code() -> dict[str, ast.AST]:
    """The package's modules and the notebooks' code cells, parsed."""
    trees = {str(p.relative_to(ROOT)): ast.parse(p.read_text()) for p in (ROOT / "jointsid_utils").rglob("*.py")}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        trees[nb.name] = ast.parse("\n".join(l for l in code.splitlines() if not l.lstrip().startswith(("%", "!"))))
    return trees


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                                          ast.AsyncFunctionDef))]
    return {id(n.body[0].value) for n in nodes if n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)}


def _read_names(trees: dict[str, ast.AST]) -> set[str]:
    """Attribute reads (``cfg.ids.levels``) anywhere, and identifiers named in string constants outside
    docstrings and config.py (``getattr(section, knob)`` tables, dotted override keys)."""
    names: set[str] = set()
    for path, tree in trees.items():
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                names.add(node.attr)
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
                  and not path.endswith("config.py")):
                names.update(w for w in node.value.replace(".", " ").split() if w.isidentifier())
    return names


def _leaf_fields(obj, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out += _leaf_fields(value, f"{prefix}{f.name}.") if dataclasses.is_dataclass(value) else [prefix + f.name]
    return out


def test_every_config_field_is_read_somewhere():
    from jointsid_utils.config import PROFILES

    read = _read_names(_code())
    unread = [f for f in _leaf_fields(PROFILES["default"]) if f.rsplit(".", 1)[-1] not in read]
    assert not unread, f"config fields that nothing reads: {unread}; read them where they matter or remove them."
