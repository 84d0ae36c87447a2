"""The layers point down: a lower layer never imports a higher one (read from the source, not run).

rules/ (the CDR contract, numbers, inventory, decisions, the engine and its rule checks) imports
nothing of ours but itself; streams/ (Kafka, Faust, adapters, the worker) imports rules/ and itself;
dashboards/ reads rules/ only; the command line (cidwatch/) sits on top, and the development tools
(cidwatch/dev/: the local broker, the simulator, the demo) are imported by nothing of the product.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "rules": {"rules"},
    "streams": {"rules", "streams"},
    "dashboards": {"rules", "dashboards"},
}
PRODUCT = ("rules", "streams", "dashboards", "cidwatch")


def imported_modules(path: Path) -> set[str]:
    """Every absolute module an import statement of `path` names (at any depth, typing-only included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def ours(module: str) -> bool:
    return module.split(".")[0] in PRODUCT


def files(package: str) -> list[Path]:
    """A package's modules; `__main__.py` is an entry point (`python -m streams worker`), the top by
    definition, so it may call the command line."""
    return sorted(path for path in (ROOT / package).rglob("*.py") if path.name != "__main__.py")


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_lower_layers_import_nothing_above_them(package: str) -> None:
    allowed = ALLOWED[package]
    offences = [f"{path.relative_to(ROOT)} imports {module}"
                for path in files(package) for module in sorted(imported_modules(path))
                if ours(module) and not any(module == a or module.startswith(a + ".") for a in allowed)]
    assert not offences, "\n".join(offences)


def test_the_product_never_imports_the_development_tools() -> None:
    offences = [f"{path.relative_to(ROOT)} imports {module}"
                for package in PRODUCT for path in files(package)
                if "dev" not in path.relative_to(ROOT).parts[1:2]
                for module in sorted(imported_modules(path)) if module.startswith("cidwatch.dev")]
    assert not offences, "\n".join(offences)


def test_the_check_finds_an_offence(tmp_path: Path) -> None:
    """The checker itself: a module importing upwards is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from streams.app import CidwatchWorker\nimport cidwatch.cli\n", encoding="utf-8")
    assert {"streams.app", "cidwatch.cli"} <= imported_modules(bad)
