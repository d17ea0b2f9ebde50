"""What keeps a 1,000-tenant render fast (it reads and writes two thousand small env files) gives the same
results and guarantees as the plain way."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from deploytool import safeio
from deploytool.errors import UserError
from deploytool.plan import build_plan
from deploytool.plan.model import Role, ServiceUrl
from deploytool.spec import load_spec


def test_a_small_file_is_read_without_a_buffer_the_size_of_the_limit(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "web.env"
    path.write_text("PORT=5002\n" * 100)
    asked: list[int] = []
    real_read = os.read

    def read(fd: int, n: int) -> bytes:
        asked.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", read)
    assert safeio.read_text(path, "reads a file") == "PORT=5002\n" * 100
    assert asked and max(asked) <= 1000 + 65536  # not MAX_READ_BYTES + 1 (a 256 MB mapping per read)


def test_a_file_is_read_whole_and_one_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    data = os.urandom(200_000)
    path.write_bytes(data)
    assert safeio.read_bytes(path, "reads a file") == data
    assert safeio.read_bytes(path, "reads a file", limit=200_000) == data
    with pytest.raises(UserError, match="larger than 199,999 bytes"):
        safeio.read_bytes(path, "reads a file", limit=199_999)
    (tmp_path / "empty").write_bytes(b"")
    assert safeio.read_bytes(tmp_path / "empty", "reads a file") == b""


@pytest.mark.parametrize(
    "overlay",
    [
        "topology: {kind: per-port}\n",
        "topology: {kind: shared}\nservices: {worker: {kind: worker, source: flask_service, start: w}}\n",
        "topology: {kind: sharded, max_tenants_per_shard: 2}\nservices: {web: {env: {PORT_NOTE: x}}}\n",
    ],
)
def test_each_variables_origin_is_the_one_worked_out_for_it_alone(make_project, overlay: str) -> None:
    spec = make_project({"dev": overlay})
    plan = build_plan(load_spec(spec, "dev").spec, "dev", None)
    pairs = [(svc, name, value) for svc in plan.services for name, value in svc.env]
    remembered = [plan.env_origin(svc, name, value) for svc, name, value in pairs]
    assert remembered == [plan._env_origin(svc, name, value) for svc, name, value in pairs]
    assert len({source for source, _ in remembered}) > 5
    # two processes of one spec service with different URLs under one name (no topology makes them yet)
    svc = next(s for s in plan.services if s.role is Role.whatsapp)
    other = dataclasses.replace(svc, name=f"{svc.name}-b")
    first, second = ServiceUrl("web", "/a"), ServiceUrl("web", "/b")
    assert (
        plan.env_origin(svc, "X", first) != plan.env_origin(other, "X", second) == plan._env_origin(other, "X", second)
    )
