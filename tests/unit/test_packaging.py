"""The distribution has one import name, and the core stays free of I/O libraries."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import mmsq

# The core may not import these; adapters implement the ports instead.
IO_LIBRARIES = {
    "smpplib",
    "sqlalchemy",
    "alembic",
    "httpx",
    "smtplib",
    "socket",
    "psycopg",
    "urllib",
    "http",
    "requests",
    "aiosmtpd",
    "pyarrow",
    "fastapi",
    "uvicorn",
    "starlette",
}
# The composition root and the thin entry points are allowed to wire adapters.
# demo.py is an entry point too: it starts the simulators and wires mmsq around them.
WIRING = {"bootstrap.py", "cli.py", "__main__.py", "demo.py"}
# The HTTP API package is an entry point like the CLI: it may use the web framework (and only
# that: it reaches the database and peers through services built by the composition root).
WIRING_PACKAGES = {"api": {"fastapi", "starlette", "uvicorn"}}


def test_every_subpackage_imports_under_the_mmsq_name() -> None:
    names = [m.name for m in pkgutil.iter_modules(mmsq.__path__, "mmsq.")]
    for sub in ("mmsq.adapters", "mmsq.simulators", "mmsq.rules"):
        package = importlib.import_module(sub)
        names.extend(m.name for m in pkgutil.walk_packages(package.__path__, f"{sub}."))
    assert "mmsq.adapters.sql_store" in names
    assert "mmsq.simulators.cdr_generator" in names
    for name in names:
        if name.startswith("mmsq.adapters.migrations.") or name == "mmsq.__main__":
            continue  # alembic's env and revisions run only inside alembic; __main__ runs the CLI
        importlib.import_module(name)


def test_rules_are_shipped_as_package_data() -> None:
    import mmsq.rules

    assert (Path(mmsq.rules.__file__).parent / "status_codes.toml").is_file()


_CORE = Path(mmsq.__file__).parent


@pytest.mark.parametrize(
    "path",
    sorted(p for p in _CORE.rglob("*.py") if p.name not in WIRING or p.parent != _CORE),
    ids=lambda p: str(p.relative_to(_CORE)),
)
def test_core_module_imports_no_io_library(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
            if node.module.startswith("mmsq.adapters"):
                imported.add("mmsq.adapters")
    package = path.relative_to(_CORE).parts[0] if path.parent != _CORE else ""
    allowed = WIRING_PACKAGES.get(package, set())
    assert not (imported & ((IO_LIBRARIES - allowed) | {"mmsq.adapters"})), imported


def test_bare_folder_import_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(mmsq.__file__).parent.parent
    monkeypatch.syspath_prepend(str(root))
    with pytest.raises(ImportError, match=r"must be imported as 'mmsq\.adapters'"):
        importlib.import_module("adapters")
