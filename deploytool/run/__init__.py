"""Run a rendered output folder on this machine: `up` (own small supervisor, or docker compose) and `down`.

The procfile runner starts every service of `<out>/deploytool-manifest.json` as a detached process
group, records them in `<out>/.run/state.json`, and returns once every health endpoint answers 200.
`down` stops exactly the process groups recorded there and nothing else.
"""

from deploytool.run.compose import compose_down, compose_up
from deploytool.run.supervisor import Event, ServiceStatus, down, status, up

__all__ = ["Event", "ServiceStatus", "compose_down", "compose_up", "down", "status", "up"]
