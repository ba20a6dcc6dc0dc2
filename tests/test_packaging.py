"""A clean install holds every module and data file: each `.py` file and asset under the package folders that
pyproject maps (`package-dir`) is in the wheel that `pip` builds, under its import name. A folder missing from
`packages` or a data file outside `package-data` installs fine from the checkout (editable) and breaks elsewhere."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _expected_files() -> set[str]:
    """Every file under a mapped folder, named as the wheel names it (a sub-folder mapped on its own, like
    builders/scenarios, maps to the same name either way)."""
    roots = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    expected = set()
    for package, folder in roots.items():
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                expected.add("/".join([*package.split("."), *path.relative_to(ROOT / folder).parts]))
    return expected


def test_the_wheel_holds_every_module_and_asset(tmp_path):
    # Built from a copy: setuptools' build/ folder in the checkout keeps files of earlier builds.
    source = tmp_path / "src"
    roots = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for folder in {folder.split("/")[0] for folder in roots.values()}:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("proactivebench-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = _expected_files()
    assert {"proactivebench/eval/report_assets/template.html", "proactivebench/data/roster.json",
            "proactivebench/samples/__init__.py", "proactivebench/__main__.py"} <= expected
    missing = sorted(expected - shipped)
    assert not missing, f"not in the wheel (pyproject packages / package-data): {missing[:10]}"
