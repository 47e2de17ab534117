"""The import rules of the package layout (subpackages by job, imports one way), read from the source with `ast`.

- map_core imports nothing from validation;
- inside map_core: atoms <- model <- {training, sampling}; training and sampling do not import
  each other (``map_core.errors``, ``map_core.files`` and ``map_core.arguments`` serve every layer);
- inside validation: md <- observables <- gate <- motif <- report <- cli; theory imports only map_core;
- no import circles among the project's modules;
- project modules are imported at the top of a file; a function may import only a heavy optional
  third-party package (``LOCAL_OK``).

The checker runs on this repository and, to show that it can fail, on small synthetic trees
that break each rule.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("map_core", "validation")
CHECKED_TOP_IMPORTS = ("map_core", "validation", "benchmarks", "tests")
LOCAL_OK = ("mdtraj", "freud", "matplotlib", "ase", "distributed", "networkx")  # slow to import, and needed by a few functions only

_CORE = {"map_core"}
_VAL_BASE = {"map_core", "map_core.atoms", "map_core.model", "map_core.training", "map_core.sampling"}
ALLOWED = {  # layer -> layers it may import (its own included)
    "map_core": _CORE,
    "map_core.atoms": _CORE | {"map_core.atoms"},
    "map_core.model": _CORE | {"map_core.atoms", "map_core.model"},
    "map_core.training": _CORE | {"map_core.atoms", "map_core.model", "map_core.training"},
    "map_core.sampling": _CORE | {"map_core.atoms", "map_core.model", "map_core.sampling"},
    "validation.md": _VAL_BASE | {"validation.md"},
    "validation.observables": _VAL_BASE | {"validation.md", "validation.observables"},
    "validation.gate": _VAL_BASE | {"validation.md", "validation.observables", "validation.gate"},
    "validation.motif": _VAL_BASE | {"validation.observables", "validation.gate", "validation.motif"},
    "validation.report": _VAL_BASE | {"validation.md", "validation.observables", "validation.gate", "validation.motif",
                                      "validation.report"},
    "validation.theory": _VAL_BASE | {"validation.theory"},
    "validation.cli": _VAL_BASE | {"validation.md", "validation.observables", "validation.gate", "validation.report",
                                   "validation.theory", "validation.motif", "validation.cli"},
}
ALLOWED["validation"] = set(ALLOWED) | {"validation"}  # the pytest face (conftest, test_gate_*) may use anything


def modules(root: Path, packages=PACKAGES) -> dict:
    """{dotted module name: path} of every .py file under the given packages of `root`."""
    out = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def layer(module: str) -> str:
    """The layer of a module: its package and first subpackage (``validation.gate``), or the package
    itself for modules at its top (``map_core.errors``, ``validation.conftest``)."""
    parts = module.split(".")
    sub = ".".join(parts[:2])
    return sub if sub in ALLOWED else parts[0]


def imports(module: str, path: Path, known: dict) -> list:
    """[(line, imported module, inside a function)] of one file; `from pkg import sub` names the
    submodule when `sub` is one, relative imports are resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((child.lineno, a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for a in child.names:
                    sub = f"{base}.{a.name}"
                    found.append((child.lineno, sub if sub in known else base, in_function))
            visit(child, inside)

    visit(tree, False)
    return found


def violations(root: Path = ROOT, packages=PACKAGES, top_level=CHECKED_TOP_IMPORTS) -> list:
    """Human-readable breaches of the layer rules and of 'project imports at the top'."""
    known = modules(root, packages)
    everything = {**modules(root, [p for p in top_level if (root / p).is_dir()]), **known}
    bad = []
    for module, path in sorted(everything.items()):
        for line, target, local in imports(module, path, everything):
            where = f"{path.relative_to(root)}:{line}"
            top = target.split(".")[0]
            if local and top in CHECKED_TOP_IMPORTS:
                bad.append(f"{where}: project module {target} imported inside a function")
            elif local and top not in LOCAL_OK:
                bad.append(f"{where}: {target} imported inside a function (only {', '.join(LOCAL_OK)} may be)")
            if module in known and top in packages and layer(target) not in ALLOWED[layer(module)]:
                bad.append(f"{where}: {layer(module)} may not import {target} ({layer(target)})")
    return bad


def import_cycle(root: Path = ROOT, packages=PACKAGES):
    """One import circle among the project's modules as a list of names, or None."""
    known = modules(root, packages)
    graph = {m: {t for _, t, _ in imports(m, p, known) if t in known and t != m} for m, p in known.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return exc.args[1]
    return None


def test_repository_follows_the_layer_rules():
    assert violations() == []


def test_repository_has_no_import_cycle():
    assert import_cycle() is None


def test_every_subpackage_lists_its_public_names():
    for module, path in modules(ROOT).items():
        if path.name == "__init__.py" and module not in PACKAGES:
            tree = ast.parse(path.read_text())
            names = [t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)]
            assert "__all__" in names, f"{path.relative_to(ROOT)} has no __all__"


def _tree(root: Path, files: dict) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CLEAN = {
    "map_core/__init__.py": "",
    "map_core/errors.py": "",
    "map_core/atoms/__init__.py": "",
    "map_core/atoms/voxels.py": "from map_core.errors import x\n",
    "map_core/model/__init__.py": "",
    "map_core/model/net.py": "from map_core.atoms.voxels import y\nimport numpy\n",
    "map_core/sampling/__init__.py": "",
    "map_core/sampling/fast.py": "from map_core.model import net\n\ndef f():\n    import freud\n",
    "validation/__init__.py": "",
    "validation/md/__init__.py": "",
    "validation/md/run.py": "from map_core.sampling.fast import f\n",
    "validation/gate/__init__.py": "",
    "validation/gate/session.py": "from validation.md import run\n",
}


def test_checker_passes_a_clean_tree(tmp_path):
    root = _tree(tmp_path, CLEAN)
    assert violations(root) == []
    assert import_cycle(root) is None


def test_checker_catches_each_kind_of_breach(tmp_path):
    breaches = {
        "map_core/atoms/voxels.py": ("from validation.gate.session import z\n", "map_core.atoms may not import validation.gate"),
        "map_core/model/net.py": ("from map_core.sampling.fast import f\n", "map_core.model may not import map_core.sampling"),
        "validation/md/run.py": ("from validation.gate import session\n", "validation.md may not import validation.gate.session"),
        "validation/gate/session.py": ("def g():\n    from validation.md.run import f\n", "project module validation.md.run imported inside"),
        "map_core/sampling/fast.py": ("def g():\n    import scipy\n", "scipy imported inside a function"),
    }
    for i, (name, (text, message)) in enumerate(breaches.items()):
        root = _tree(tmp_path / str(i), {**CLEAN, name: text})
        found = violations(root)
        assert any(message in v for v in found), (name, found)


def test_checker_finds_a_circle(tmp_path):
    root = _tree(tmp_path, {**CLEAN, "map_core/atoms/voxels.py": "from map_core.atoms import frames\n",
                            "map_core/atoms/frames.py": "from . import voxels\n"})
    cycle = import_cycle(root)
    assert cycle is not None and {"map_core.atoms.voxels", "map_core.atoms.frames"} <= set(cycle)
