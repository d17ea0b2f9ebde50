"""The templates live in the top-level templates/ folder but must ship inside the installed package."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("deploytool-*.whl")
    return built


def test_wheel_carries_the_templates(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = REPO / "templates"
    expected = {f"deploytool/templates/{p.relative_to(templates).as_posix()}" for p in templates.rglob("*.j2")}
    assert {"deploytool/templates/railway.py.j2", "deploytool/templates/init/deploytool.yaml.j2"} <= expected
    assert expected <= names
    assert "deploytool/cli.py" in names


def test_the_installed_wheel_renders_from_its_own_templates(wheel, tmp_path):
    """Install the wheel into a fresh venv outside the checkout and run `init` then `render` with it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    # The dependencies come from this interpreter's site-packages (no download): a .pth only appends that
    # folder, after the venv's own site-packages, and runs none of its .pth files (the checkout's editable
    # install among them), so `import deploytool` can only find the wheel's copy.
    (venv_site,) = (venv / "lib").glob("python*/site-packages")
    (venv_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DEPLOYTOOL_TEMPLATES")}
    work = tmp_path / "work"
    work.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False)

    where = run(str(python), "-c", "import deploytool, json; print(json.dumps(deploytool.__file__))")
    assert where.returncode == 0, where.stderr
    installed = Path(json.loads(where.stdout))
    assert installed.is_relative_to(venv), installed
    assert (installed.parent / "templates" / "railway.py.j2").is_file()

    deploytool = str(venv / "bin" / "deploytool")
    init = run(deploytool, "init", "proj", "--project", "acme", "--topology", "sharded", "--tenants", "a,b,c",
               "--targets", "local,compose,railway", "--repo", "acme/chat")  # fmt: skip
    assert init.returncode == 0, init.stdout + init.stderr
    for folder in ("flask_service", "node_service"):
        (work / "proj" / folder).mkdir()
        (work / "proj" / folder / "Dockerfile").write_text("FROM scratch\n")
    for env_name, produced in (("dev", "deploy/dev/Procfile"), ("prod", ".railway/railway.py")):
        rendered = run(deploytool, "--spec", "proj/deploytool.yaml", "render", env_name)
        assert rendered.returncode == 0, rendered.stdout + rendered.stderr
        out = work / "proj" / "deploy" / env_name
        assert (work / "proj" / produced).is_file()
        assert (out / ".env.example").read_text().startswith("# Secrets of acme")
    assert '"prod": _layout_prod' in (work / "proj" / ".railway" / "railway.py").read_text()
