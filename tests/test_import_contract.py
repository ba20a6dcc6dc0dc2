"""The layering contract of docs/architecture.md §2: each stage depends on the core, never sideways.

builders → core; eval → core; curation → core + eval; train → core + eval; samples → core + builders; the command
line and the demo (which run every stage) may import anything. Lazy imports inside functions count, and so does
`importlib.import_module("proactivebench.…")` with a literal name.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# stage -> the stages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "builders": {"core"},
    "eval": {"core"},
    "curation": {"core", "eval"},
    "train": {"core", "eval"},
    "samples": {"core", "builders"},
    "app": {"core", "builders", "eval", "curation", "train", "samples"},
}
APP_MODULES = {"proactivebench.cli", "proactivebench.__main__", "proactivebench.demo"}  # they wire every stage together


def stage_of(module: str) -> str | None:
    """The stage a `proactivebench` module belongs to; None for anything outside the package."""
    parts = module.split(".")
    if parts[0] != "proactivebench":
        return None
    if module in APP_MODULES:
        return "app"
    if len(parts) > 1 and parts[1] in ALLOWED and parts[1] not in ("core", "app"):
        return parts[1]
    return "core"


def package_files(root: Path) -> dict[str, Path]:
    """Module name -> file, from pyproject's package-dir (the same map the installed package uses)."""
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = config["package-dir"]
    modules: dict[str, Path] = {}
    for package in config["packages"]:
        # the folder of a package: its own package-dir entry, else its parent's folder + its last name
        head, tail = package, []
        while head not in package_dir:
            head, _, last = head.rpartition(".")
            tail.insert(0, last)
        folder = root / package_dir[head] / Path(*tail)
        for file in sorted(folder.glob("*.py")):
            name = package if file.name == "__init__.py" else f"{package}.{file.stem}"
            modules[name] = file
    return modules


def imported_modules(module: str, file: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, lazy ones included."""
    is_package = file.name == "__init__.py"
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base)
                if node.module:
                    found.append((node.lineno, f"{prefix}.{node.module}"))
                else:  # `from . import x`: x may be a module
                    found += [(node.lineno, f"{prefix}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module or ""))
                found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def sideways_imports(root: Path) -> list[str]:
    problems: dict[tuple[str, int, str], str] = {}  # one problem per line and stage, naming the first module
    modules = package_files(root)
    for module, file in modules.items():
        own = stage_of(module)
        for line, target in imported_modules(module, file):
            other = stage_of(target)
            if other is None or other == own:
                continue
            # `from proactivebench import x`: judge by the module x when it is one
            if other == "core" and target.rpartition(".")[0] == "proactivebench" and target not in modules:
                continue
            if other not in ALLOWED[own]:
                where = str(file.relative_to(root))
                problems.setdefault((where, line, other), f"{where}:{line}: {own} imports {other} ({target})")
    return [problems[key] for key in sorted(problems)]


def test_no_stage_imports_sideways():
    problems = sideways_imports(ROOT)
    assert not problems, "sideways imports (docs/architecture.md §2):\n" + "\n".join(problems)


def test_every_package_file_is_checked():
    modules = package_files(ROOT)
    stages = {stage_of(name) for name in modules}
    assert stages == set(ALLOWED), stages
    assert len(modules) > 60


@pytest.mark.parametrize(
    "planted, stage",
    [
        ("from proactivebench.curation.filter import keep_rule\n", "eval imports curation"),
        ("def lazy():\n    from ..builders import scenarios\n", "eval imports builders"),
        ("import importlib\nimportlib.import_module('proactivebench.train.grpo')\n", "eval imports train"),
    ],
)
def test_a_planted_sideways_import_is_caught(tmp_path, planted, stage):
    """A copy of the tree's pyproject and package folders with one sideways import planted in eval/."""
    import shutil

    for name in ("pyproject.toml",):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("proactivebench", "builders", "curation", "eval", "train"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    before = sideways_imports(tmp_path)
    assert before == sideways_imports(ROOT)
    (tmp_path / "eval" / "planted.py").write_text(planted)
    new = [problem for problem in sideways_imports(tmp_path) if problem not in before]
    assert len(new) == 1 and new[0].startswith("eval/planted.py:") and stage in new[0], new
