"""Stage 4: named cross-checks over the plan, then the rendered files through their real consumers."""

from deploytool.checks.consumers import check_artifacts
from deploytool.checks.plan_checks import check_plan

__all__ = ["check_artifacts", "check_plan"]
