"""Run a rendered output folder on this machine: `up`, `down`, `status`, `logs`, through one `Runner`.

The procfile runner starts every service of `<out>/deploytool-manifest.json` as a detached process
group, records them in `<out>/.run/state.json`, and returns once every health endpoint answers 200.
`down` stops exactly what was recorded there and nothing else. The compose runner hands the rendered
docker-compose.yml to Docker Compose v2.
"""

from deploytool.run.base import Event, Runner, ServiceStatus
from deploytool.run.runners import RUNNERS, PsRow, down, ps_rows, runner, running_runner

__all__ = ["RUNNERS", "Event", "PsRow", "Runner", "ServiceStatus", "down", "ps_rows", "runner", "running_runner"]
