"""The layer contract (pyproject's ``[tool.importlinter]``) holds, and would catch a broken layer.

``lint-imports`` runs here against the real tree, then against a temp copy
with one deliberate bad import per kind of break (a lower layer importing an
upper one, a cycle inside a package, product code importing the tests), each
of which must fail it. Private Dagster modules are checked by reading every
import (import-linter cannot forbid a subpackage of an external package).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)}, timeout=120)


def test_the_tree_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("layers")
    shutil.copytree(ROOT / "bench_assets", target / "bench_assets",
                    ignore=shutil.ignore_patterns("__pycache__", "static"))
    (target / "bench_assets_tests").mkdir()
    (target / "bench_assets_tests" / "__init__.py").write_text("")
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


BAD_IMPORTS = {
    "core imports storage": ("bench_assets/core/naming.py", "import bench_assets.storage.warehouse"),
    "metrics import the Dagster layer": ("bench_assets/metrics/base.py", "import bench_assets.defs.assets"),
    "storage imports the report": ("bench_assets/storage/results.py", "import bench_assets.report.build"),
    "a cycle inside compute": ("bench_assets/compute/protocol.py", "import bench_assets.compute.backend"),
    "product imports the tests": ("bench_assets/stats/ranks.py", "import bench_assets_tests"),
}


@pytest.mark.parametrize("label", list(BAD_IMPORTS))
def test_a_bad_import_breaks_the_contract(tree_copy: Path, label: str) -> None:
    relpath, line = BAD_IMPORTS[label]
    module = tree_copy / relpath
    original = module.read_text()
    module.write_text(original + f"\n{line}  # deliberate: {label}\n")
    try:
        result = _lint(tree_copy)
    finally:
        module.write_text(original)
    assert result.returncode != 0, f"{label}: lint-imports passed\n{result.stdout[-2000:]}"
    assert "BROKEN" in result.stdout


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def test_no_private_dagster_module_is_imported() -> None:
    private = [f"{path.relative_to(ROOT)}:{line} {module}"
               for path in sorted((ROOT / "bench_assets").rglob("*.py"))
               for line, module in _imported_modules(path)
               if module.startswith("dagster") and any(part.startswith("_") for part in module.split(".")[1:])]
    assert private == []


def test_partition_range_tags_are_dagsters() -> None:
    """The range tags are written by name (no public constant): they must still be the ones Dagster reads."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from bench_assets.defs import partitions

    assert partitions.ASSET_PARTITION_RANGE_START_TAG == ASSET_PARTITION_RANGE_START_TAG
    assert partitions.ASSET_PARTITION_RANGE_END_TAG == ASSET_PARTITION_RANGE_END_TAG


MAX_FUNCTION_LINES = 60


def test_no_function_is_longer_than_sixty_lines() -> None:
    """Short functions (DEVELOPERS: a newcomer reads the code in an afternoon); docstrings count."""
    long = [f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path in sorted((ROOT / "bench_assets").rglob("*.py"))
            for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []
