"""A built wheel installs one top-level package, ``mmsq``, with the rules as package data."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_wheel_has_one_import_name_and_ships_the_rules(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("mmsq-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"mmsq"}
    for expected in (
        "mmsq/adapters/sql_store.py",
        "mmsq/simulators/cdr_generator.py",
        "mmsq/rules/status_codes.toml",
        "mmsq/adapters/migrations/env.py",
        "mmsq/adapters/migrations/versions/0001_delivery_events.py",
        "mmsq/templates/report.html.j2",
    ):
        assert expected in names

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    probe = (
        "import mmsq, mmsq.adapters.sql_store, mmsq.rules_loader as r; "
        "print(mmsq.__file__); print(len(r.load_rules().status_codes.namespaces))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    assert out[0].startswith(str(target))
    assert int(out[1]) >= 1
