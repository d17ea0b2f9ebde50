"""The docs a user reads stand alone and stay true: links stay inside the repo, the spec reference is the
model's, and the "deploy your own app" walk-through runs as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploytool.spec.reference import spec_reference
from tests.conftest import REPO

# the repository's own READMEs: not a tool's cache folder (.pytest_cache/README.md after a local run)
READMES = sorted(p for p in REPO.glob("*/README.md") if not p.parent.name.startswith("."))
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *READMES]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_spec_reference_is_generated_from_the_model():
    written = (REPO / "docs" / "spec.md").read_text()
    assert written == spec_reference(), "run `deploytool schema --format markdown > docs/spec.md`"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_link_leaves_the_repository(doc):
    for target in LINK.findall(doc.read_text()):
        if re.match(r"^[a-z]+://", target) or target.startswith(("#", "mailto:")):
            continue  # web addresses and anchors are not files
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(REPO), f"{doc.name}: {target} points outside the repository"
        assert path.exists(), f"{doc.name}: {target} does not exist"


def walkthrough_script() -> str:
    text = (REPO / "docs" / "own-app.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3
    return "".join(blocks)


@pytest.mark.skipif(shutil.which("node") is None, reason="the WhatsApp service needs Node.js")
def test_the_own_app_walkthrough_runs_as_written(tmp_path):
    script = walkthrough_script()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYTOOL", "DATABASE_URL"))},
        "DEPLOYTOOL_REPO": str(REPO),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # Whatever happens, stop what `up` started (the doc's own last step, run again on failure).
    guarded = f"set -euo pipefail\ntrap 'cd {tmp_path}/acme-chat 2>/dev/null && deploytool down dev >/dev/null' EXIT\n"
    result = subprocess.run(
        ["bash", "-c", guarded + script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "dev: ok" in result.stdout
    assert "OK: 7 passed, 0 failed" in result.stdout  # 3 health + 2 tenants x (direct, through flask)
    assert "dev: stopped" in result.stdout
