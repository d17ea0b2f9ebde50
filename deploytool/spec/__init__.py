"""Stage 1: load `deploytool.yaml` + `environments/<env>.yaml` into a validated `Spec`.

The model is here; the loader is `deploytool.spec.load` (it imports yaml, which every command that only
needs the model's names need not pay for)."""

from deploytool.spec.model import Spec

__all__ = ["Spec"]
