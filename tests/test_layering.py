"""The package's layers, checked on the source: each layer imports only what lies below it.

    scripts/, train.py -> isegm.web -> isegm.inference; isegm.engine, isegm.inference -> isegm.build -> isegm.model
    -> isegm.model.modeling; isegm.data beside the model; isegm.utils at the bottom. Nothing in isegm imports
    isegm.web (the annotation server).
"""
import ast
import sys
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "isegm"

# layer -> the isegm packages it must not import
FORBIDDEN = {
    "isegm.utils": ("isegm.build", "isegm.model", "isegm.data", "isegm.engine", "isegm.inference", "isegm.web"),
    "isegm.model": ("isegm.build", "isegm.data", "isegm.engine", "isegm.inference", "isegm.web"),
    "isegm.data": ("isegm.build", "isegm.model", "isegm.engine", "isegm.inference", "isegm.web"),
    "isegm.build": ("isegm.data", "isegm.engine", "isegm.inference", "isegm.web"),
    "isegm.inference": ("isegm.engine", "isegm.web"),
    "isegm.engine": ("isegm.inference", "isegm.web"),
    # the annotation server sits on top, beside the engine: nothing in isegm imports it
    "isegm.web": ("isegm.engine",),
}
# isegm/__init__.py is checked too: it must not import the server either
TOP = {"isegm": ("isegm.web",)}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path):
    """``(line, imported module)`` for every import of ``path``, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:   # `from isegm import model` imports isegm.model
                yield node.lineno, f"{base}.{alias.name}"


def violations():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        for layer, forbidden in list(FORBIDDEN.items()) + list(TOP.items()):
            if name == layer or (name.startswith(layer + ".") and layer not in TOP):
                seen = set()
                for line, target in imports(path):
                    if line not in seen and any(target == f or target.startswith(f + ".") for f in forbidden):
                        seen.add(line)
                        found.append(f"{path.relative_to(REPO)}:{line} ({layer}) imports {target}")
    return found


def test_every_layer_imports_only_what_lies_below():
    assert violations() == []


def test_the_check_sees_a_violation(tmp_path, monkeypatch):
    fake = tmp_path / "isegm" / "utils"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("from isegm.inference.utils import load_is_model\nfrom ..model import ops\n")
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "REPO", tmp_path)
    monkeypatch.setattr(this, "PACKAGE", tmp_path / "isegm")
    found = violations()
    assert len(found) == 2 and "isegm.inference.utils" in found[0] and "imports isegm.model" in found[1]


def test_nothing_in_the_package_imports_the_server(tmp_path, monkeypatch):
    (tmp_path / "isegm" / "inference").mkdir(parents=True)
    (tmp_path / "isegm" / "__init__.py").write_text("import isegm.web.app\n")
    (tmp_path / "isegm" / "inference" / "bad.py").write_text("from isegm.web import create_app\n")
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "REPO", tmp_path)
    monkeypatch.setattr(this, "PACKAGE", tmp_path / "isegm")
    found = violations()
    assert len(found) == 2 and "isegm/__init__.py:1 (isegm) imports isegm.web.app" in found
    assert "isegm/inference/bad.py:1 (isegm.inference) imports isegm.web" in found


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "scripts").glob("*.py")))
def test_scripts_do_not_edit_sys_path(script):
    assert "sys.path" not in (REPO / "scripts" / script).read_text()
