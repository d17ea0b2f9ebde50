"""The shard lock (`environments/<env>.lock.json`): sticky tenant -> shard assignments, as a typed model.

Read before planning and written back by `render`. Bounded on read: a shard number above what the
environment could ever need (its tenant count, or `topology.shards`) would make the plan add hundreds of
services or exhaust memory, so it is refused with the file and the entry.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationError

from deploytool.errors import UserError, first_problem
from deploytool.safeio import load_json, whole_number
from deploytool.spec.model import TENANT_ID_PATTERN

LOCK_VERSION: Literal[1] = 1


def lock_path(env_name: str) -> str:
    return f"environments/{env_name}.lock.json"


class ShardLock(BaseModel):
    # built on first use: only sharded environments read or write a lock
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    version: Annotated[Literal[1], BeforeValidator(whole_number)]
    env: str
    assignments: dict[Annotated[str, Field(pattern=TENANT_ID_PATTERN)], Annotated[StrictInt, Field(ge=1)]]

    def text(self) -> str:
        data = {"assignments": dict(sorted(self.assignments.items())), "env": self.env, "version": self.version}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


def parse_lock(text: str, where: str, env_name: str, max_shard: int) -> dict[str, int]:
    """The assignments of a lock file's text; UserError naming `where` and the entry when it is wrong."""
    data = load_json(text, where)  # a key written twice is refused, not the last one kept
    try:
        lock = ShardLock.model_validate(data)
    except ValidationError as exc:
        raise UserError(
            f"{where}: {first_problem(exc)}; expected "
            '{"version": 1, "env": ENV, "assignments": {tenant: shard number >= 1}}'
        ) from None
    if lock.env != env_name:
        raise UserError(f"{where}: env: the lock is for environment {lock.env!r}, not {env_name!r}")
    for tenant, shard in sorted(lock.assignments.items()):
        if shard > max_shard:
            raise UserError(
                f"{where}: assignments.{tenant}: shard {shard} is beyond what this environment can use "
                f"(at most {max_shard}: its tenant count or topology.shards)"
            )
    return dict(lock.assignments)
