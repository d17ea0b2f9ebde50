"""The shard lock as an artifact, so `render` writes it with the rest and `--check` compares it."""

from __future__ import annotations

from deploytool.plan.lock import LOCK_VERSION, ShardLock, lock_path
from deploytool.plan.model import Plan
from deploytool.render.artifacts import Artifact


def render_lock(plan: Plan) -> Artifact | None:
    if plan.shard_lock is None:
        return None
    lock = ShardLock(version=LOCK_VERSION, env=plan.env_name, assignments=plan.shard_lock)
    return Artifact(lock_path(plan.env_name), lock.text())
