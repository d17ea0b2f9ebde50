"""Pure assignment rules: per-port ports and sticky shard placement."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def allocate_ports(
    tenants: Iterable[str], base: int, reserved: Iterable[int], explicit: Mapping[str, int]
) -> dict[str, int]:
    """Give every tenant a port: explicit ones as written, the rest the lowest free port >= base.

    Ports used by any other service are skipped, so the seeds' `5001 + (user_id - 1)` collision with
    Flask on 5002 cannot happen. Explicit ports are kept even when they collide: the checks report it.
    """
    taken = set(reserved) | set(explicit.values())
    ports: dict[str, int] = {}
    candidate = base
    for tenant in tenants:
        if tenant in explicit:
            ports[tenant] = explicit[tenant]
            continue
        while candidate in taken:
            candidate += 1
        ports[tenant] = candidate
        taken.add(candidate)
    return ports


def assign_shards(tenants: Iterable[str], lock: Mapping[str, int], capacity: int, min_shards: int) -> dict[str, int]:
    """Sticky placement: a tenant in the lock keeps its shard; a new one goes to the first shard with room.

    Shards are numbered from 1. Tenants removed from the spec leave the lock; nobody else moves.
    """
    tenant_list = list(tenants)
    current = set(tenant_list)
    assignment = {t: shard for t, shard in lock.items() if t in current}
    load: dict[int, int] = {}
    for shard in assignment.values():
        load[shard] = load.get(shard, 0) + 1
    shard_count = max([min_shards, *load.keys()]) if load else min_shards
    next_shard = 1
    for tenant in tenant_list:
        if tenant in assignment:
            continue
        while load.get(next_shard, 0) >= capacity:
            next_shard += 1
        assignment[tenant] = next_shard
        load[next_shard] = load.get(next_shard, 0) + 1
        shard_count = max(shard_count, next_shard)
    for shard in range(1, shard_count + 1):
        load.setdefault(shard, 0)
    return assignment


def shard_numbers(assignment: Mapping[str, int], min_shards: int) -> list[int]:
    highest = max([min_shards, *assignment.values()]) if assignment else min_shards
    return list(range(1, highest + 1))
