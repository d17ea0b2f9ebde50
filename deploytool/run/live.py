"""The live layer: how the run side talks to the processes and containers it started on this machine.

One HTTP client (`client`), one wording for a request that got no answer (`no_answer`), one poller
(`wait_until`) and one health check (`check_health`). The supervisor, the Compose runner, `ps`, `tenants` and
probe's local set-up all use these; nothing else under `run/` opens a session or loops on a deadline.

requests is imported when a live environment is touched, never with this module.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deploytool.errors import CheckFailed
from deploytool.run.procs import stop_group

if TYPE_CHECKING:
    import requests

POLL_INTERVAL_S = 0.3
COMMAND_TIMEOUT_S = 10.0  # a health command that takes longer counts as unhealthy


def client() -> requests.Session:
    """A session for our own processes on this machine (127.0.0.1).

    trust_env off: an HTTP_PROXY set for the outside world (without a NO_PROXY naming 127.0.0.1) would send
    these requests to the proxy, which cannot reach our loopback, and a wait for a healthy service would wait in
    vain. It also keeps netrc credentials and REQUESTS_CA_BUNDLE out of a plain-HTTP loopback request."""
    import requests

    session = requests.Session()
    session.trust_env = False
    return session


def no_answer(exc: BaseException) -> str:
    """A request that got no answer, in a few words: the innermost error's own (`Connection refused`), not the
    wrapping of requests and urllib3."""
    import requests

    if isinstance(exc, requests.Timeout):
        return "timed out"
    words = str(exc) or type(exc).__name__
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # requests -> urllib3 -> the OSError
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            words = current.strerror
        inner = [getattr(current, "reason", None), current.__cause__, *current.args]
        current = next((e for e in inner if isinstance(e, BaseException)), None)
    return words


def call(
    session: requests.Session,
    method: str,
    url: str,
    timeout_s: float,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """One request to a service of ours; CheckFailed naming the request and why when nothing answers."""
    import requests

    try:
        return session.request(method, url, headers=headers, timeout=timeout_s, allow_redirects=False)
    except requests.RequestException as exc:
        raise CheckFailed(f"{method} {url}: no answer ({no_answer(exc)})") from None


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str  # `HTTP 200`, or why nothing answered


def check_health(session: requests.Session, url: str, timeout_s: float) -> Health:
    """One GET of a health URL: healthy on HTTP 200, anything else (or no answer) is not."""
    import requests

    try:
        with session.get(url, timeout=timeout_s, allow_redirects=False) as response:
            return Health(response.status_code == 200, f"HTTP {response.status_code}")
    except requests.RequestException as exc:
        return Health(False, no_answer(exc))


def check_command(command: str, cwd: Path, env: Mapping[str, str], timeout_s: float = COMMAND_TIMEOUT_S) -> Health:
    """One run of a health command (a worker's `health_command`) with the service's environment: healthy when
    it exits 0. Its output is not kept (it may print the service's secrets); one that hangs is killed with its
    children and counts as unhealthy."""
    quiet = subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            ["sh", "-c", command],
            cwd=cwd,
            env=dict(env),
            stdin=quiet,
            stdout=quiet,
            stderr=quiet,
            start_new_session=True,
        )
    except OSError as exc:
        return Health(False, f"cannot run the health command: {exc.strerror or exc}")
    try:
        code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_group(process, (0.0, 5.0))
        return Health(False, f"health command did not finish within {timeout_s:g} s")
    return Health(code == 0, f"health command exit code {code}")


def wait_until(
    done: Callable[[], bool],
    deadline_s: float,
    interval_s: float = POLL_INTERVAL_S,
) -> bool:
    """Call `done` until it says True (True) or `deadline_s` seconds have passed (False); `done` may raise to
    end the wait early (a process that exited). It is called at least once, however short the deadline."""
    started = time.monotonic()
    while True:
        if done():
            return True
        if time.monotonic() - started >= deadline_s:
            return False
        time.sleep(interval_s)
