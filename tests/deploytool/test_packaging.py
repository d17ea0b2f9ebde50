"""The templates live in the top-level templates/ folder but must ship inside the installed package."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tests.conftest import REPO


def test_wheel_carries_the_templates(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("deploytool-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"deploytool/templates/{p.name}" for p in (REPO / "templates").iterdir()}
    assert expected and expected <= names
    assert "deploytool/cli.py" in names
