"""`deploytool tenants list|move|rebalance` on environments that do not run: the lock, the render, the errors,
and the fewest moves (the live moves are in tests/e2e/test_tenant_moves.py)."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploytool.cli import main
from deploytool.render.envfile import parse_env
from deploytool.tenants import Move, rebalance_moves

SHARDED = "stage: production\ntenants: ['1', '2', '3', '4', '5']\ntopology: {kind: sharded, max_tenants_per_shard: 3}\n"


def lock(spec, env="prod"):
    return json.loads((spec.parent / "environments" / f"{env}.lock.json").read_text())["assignments"]


def write_lock(spec, assignments, env="prod"):
    text = json.dumps({"version": 1, "env": env, "assignments": assignments})
    (spec.parent / "environments" / f"{env}.lock.json").write_text(text)


@pytest.fixture
def sharded(make_project):
    spec = make_project({"prod": SHARDED, "dev": "{}\n"})
    assert main(["--spec", str(spec), "render", "prod"]) == 0
    assert lock(spec) == {"1": 1, "2": 1, "3": 1, "4": 2, "5": 2}
    return spec


def manifest(spec, env="prod"):
    return json.loads((spec.parent / "deploy" / env / "deploytool-manifest.json").read_text())


def test_move_updates_the_lock_and_every_artifact(sharded, capsys):
    assert main(["--spec", str(sharded), "tenants", "move", "prod", "2", "--shard", "2"]) == 0
    assert lock(sharded) == {"1": 1, "2": 2, "3": 1, "4": 2, "5": 2}
    assert "move tenant 2: whatsapp-shard-1 -> whatsapp-shard-2" in capsys.readouterr().out
    data = manifest(sharded)
    assert {r["tenant"]: r["service"] for r in data["tenants"]}["2"] == "whatsapp-shard-2"
    out = sharded.parent / "deploy" / "prod"
    env = {s["name"]: parse_env((out / s["process"]["env_file"]).read_text()) for s in data["services"]}
    assert env["whatsapp-shard-1"]["TENANTS"] == "1,3" and env["whatsapp-shard-2"]["TENANTS"] == "2,4,5"
    assert json.loads(env["web"]["WHATSAPP_TENANT_URLS"])["2"] == f"http://127.0.0.1:{data['services'][2]['port']}"
    assert main(["--spec", str(sharded), "render", "prod", "--check"]) == 0  # the files follow the lock
    assert main(["--spec", str(sharded), "tenants", "move", "prod", "2", "--shard", "2"]) == 0
    assert "already; nothing to do" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["9", "--shard", "2"], "unknown tenant '9' (tenants: 1, 2, 3, 4, 5)"),
        (["2", "--shard", "3"], "--shard: prod has shards 1, 2"),
        (["2", "--shard", "0"], "--shard: prod has shards 1, 2"),
    ],
)
def test_move_errors_exit_2_and_change_nothing(sharded, capsys, args, message):
    before = (sharded.parent / "environments" / "prod.lock.json").read_text()
    assert main(["--spec", str(sharded), "tenants", "move", "prod", *args]) == 2
    assert message in capsys.readouterr().err
    assert (sharded.parent / "environments" / "prod.lock.json").read_text() == before


def test_move_onto_a_full_shard_is_refused(sharded, capsys):
    assert main(["--spec", str(sharded), "tenants", "move", "prod", "4", "--shard", "1"]) == 2
    err = capsys.readouterr().err
    assert "whatsapp-shard-1 already holds 3 tenants and max_tenants_per_shard is 3" in err


def test_move_needs_the_sharded_topology(sharded, capsys):
    assert main(["--spec", str(sharded), "tenants", "move", "dev", "1", "--shard", "1"]) == 2
    assert "topology is shared; tenants move needs topology sharded" in capsys.readouterr().err
    assert main(["--spec", str(sharded), "tenants", "rebalance", "dev"]) == 2


def test_move_needs_its_shard_option(sharded, capsys):
    assert main(["--spec", str(sharded), "tenants", "move", "prod", "1"]) == 2
    assert "--shard" in capsys.readouterr().err


def test_list_names_every_tenants_service_without_a_running_environment(sharded, capsys):
    assert main(["--spec", str(sharded), "tenants", "list", "prod"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TENANT", "SERVICE", "STATE", "ME"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["1", "whatsapp-shard-1", "-"],
        ["2", "whatsapp-shard-1", "-"],
        ["3", "whatsapp-shard-1", "-"],
        ["4", "whatsapp-shard-2", "-"],
        ["5", "whatsapp-shard-2", "-"],
    ]


def test_rebalance_prints_the_fewest_moves_and_applies_them(sharded, capsys):
    write_lock(sharded, {"1": 1, "2": 1, "3": 1, "4": 2, "5": 1})  # 4 on shard 1, 1 on shard 2
    assert main(["--spec", str(sharded), "tenants", "rebalance", "prod"]) == 0
    out = capsys.readouterr().out
    assert "move tenant 5: whatsapp-shard-1 -> whatsapp-shard-2" in out and "1 move(s)" in out
    assert lock(sharded)["5"] == 1  # printing changes nothing
    assert main(["--spec", str(sharded), "tenants", "rebalance", "prod", "--apply"]) == 0
    assert lock(sharded) == {"1": 1, "2": 1, "3": 1, "4": 2, "5": 2}
    assert main(["--spec", str(sharded), "tenants", "rebalance", "prod"]) == 0
    assert "shards are even; nothing to move" in capsys.readouterr().out


def test_rebalance_gives_the_extra_places_to_the_fullest_shards():
    # 7 tenants on 3 shards: loads 5, 2, 0 -> 3, 2, 2 in two moves (3, 3, 1 or 2, 3, 2 would need more)
    assignment = {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 2, "g": 2}
    moves = rebalance_moves(assignment, [1, 2, 3], list(assignment))
    assert moves == [Move("d", 1, 3), Move("e", 1, 3)]


def _cost_to(assignment: dict[str, int], loads: tuple[int, ...]) -> int:
    """Moves needed to reach the given per-shard loads (each tenant above a shard's load moves once)."""
    current = [sum(1 for s in assignment.values() if s == i + 1) for i in range(len(loads))]
    return sum(max(0, c - t) for c, t in zip(current, loads, strict=True))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=0, max_size=9), st.integers(1, 4))
def test_rebalance_is_even_and_never_moves_more_than_needed(shards_of, count):
    shards = list(range(1, max([count, *shards_of]) + 1))
    assignment = {str(i): s for i, s in enumerate(shards_of)}
    moves = rebalance_moves(assignment, shards, list(assignment))
    after = dict(assignment)
    for step in moves:
        assert after[step.tenant] == step.source != step.target
        after[step.tenant] = step.target
    loads = [sum(1 for s in after.values() if s == shard) for shard in shards]
    assert max(loads) - min(loads) <= 1
    assert len({m.tenant for m in moves}) == len(moves)  # nobody moves twice
    # brute force: no even layout is reachable in fewer moves
    n, k = len(assignment), len(shards)
    even = {p for p in itertools.product(range(n + 1), repeat=k) if sum(p) == n and max(p) - min(p) <= 1}
    assert len(moves) == min(_cost_to(assignment, p) for p in even)
