"""Stage 2: turn a Spec into a concrete, target-neutral Plan."""

from deploytool.plan.build import build_plan
from deploytool.plan.model import Plan, ServiceInstance

__all__ = ["Plan", "ServiceInstance", "build_plan"]
