"""WSGI entry point: ``gunicorn --bind "[::]:$PORT" flask_service.wsgi:app``."""

from __future__ import annotations

import sys

from . import ConfigError, create_app

try:
    app = create_app()
except ConfigError as _exc:
    print(f"flask_service: error: {_exc}", file=sys.stderr, flush=True)
    # 4 is gunicorn's "app failed to load": the arbiter stops instead of respawning workers
    sys.exit(4)
