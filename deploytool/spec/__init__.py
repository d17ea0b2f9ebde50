"""Stage 1: load `deploytool.yaml` + `environments/<env>.yaml` into a validated `Spec`."""

from deploytool.spec.load import load_spec
from deploytool.spec.model import Spec

__all__ = ["Spec", "load_spec"]
