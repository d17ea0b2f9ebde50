"""Issue 11: the node_service image on a root-owned volume, as Railway mounts it, on a real engine.

Builds node_service/Dockerfile, makes a named volume whose /data and /data/auth belong to root (mode 755,
as a fresh Railway volume), runs the image as it is (no --user) with that volume at /data, and checks
that the entrypoint gave the session folder to uid 1000 and dropped root: /health answers 200 with
`auth_root_writable: true`, PID 1 (node, exec'd by the entrypoint) runs as uid 1000, and /data/auth
belongs to 1000. With the image that started as `USER 1000:1000` and had no entrypoint, /health answers
503 (`auth_root_writable: false`).

Select with `-m engine`; skips without an engine, fails under CI (`CI` set), like test_compose_engine.py.
Removes only what it created: its container(s), its volume and its image tag.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence

import httpx
import pytest

from tests.conftest import REPO
from tests.e2e.conftest import _free_block
from tests.e2e.test_compose_engine import engine_environ  # noqa: F401  (the module fixture, reused)

pytestmark = pytest.mark.engine

TEST_LABEL = "org.deploytool.test=node-volume"
NODE_UID = 1000


def docker(environ: Mapping[str, str], *args: str, timeout: float = 60) -> str:
    result = subprocess.run(
        ["docker", *args], env=dict(environ), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout.strip()


class Resources:
    """What this test created, removed in reverse order; nothing else is ever touched."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.suffix = uuid.uuid4().hex[:10]
        self.created: list[tuple[str, str]] = []  # (kind, name)

    def name(self, what: str) -> str:
        return f"deploytool-e2e-{what}-{self.suffix}"

    def build(self, context: str) -> str:
        tag = f"deploytool-e2e-node-volume:{self.suffix}"
        # The classic builder (no buildx with Debian's CLI) on the host network: containers have no NAT here.
        docker(
            {**self.environ, "DOCKER_BUILDKIT": "0"},
            *("build", "--network", "host", "--label", TEST_LABEL, "-q", "-t", tag, context),
            timeout=600,
        )
        self.created.append(("image", tag))
        return tag

    def volume(self) -> str:
        name = self.name("auth")
        docker(self.environ, "volume", "create", "--label", TEST_LABEL, name)
        self.created.append(("volume", name))
        return name

    def run(self, *args: str) -> str:
        """`docker run -d` under a name of ours; returns that name."""
        name = self.name(f"node{len(self.created)}")
        self.created.append(("container", name))
        docker(self.environ, "run", "-d", "--name", name, "--label", TEST_LABEL, *args)
        return name

    def run_once(self, *args: str) -> str:
        """A throw-away container run as root (`--rm`); returns its output."""
        return docker(self.environ, "run", "--rm", "--label", TEST_LABEL, "--user", "0", *args)

    def cleanup(self) -> None:
        for kind, name in reversed(self.created):
            command: Sequence[str] = {
                "container": ("rm", "-f", "-v", name),
                "volume": ("volume", "rm", name),
                "image": ("rmi", name),  # the tag; layers shared with other images stay
            }[kind]
            subprocess.run(["docker", *command], env=dict(self.environ), capture_output=True, check=False)


@pytest.fixture
def resources(engine_environ: dict[str, str]) -> Iterator[Resources]:  # noqa: F811
    created = Resources(engine_environ)
    try:
        yield created
    finally:
        created.cleanup()


def test_node_image_takes_a_root_owned_volume(resources: Resources) -> None:
    image = resources.build(str(REPO / "node_service"))
    volume = resources.volume()

    # A volume as Railway hands it over: /data and /data/auth owned by root, writable by root only.
    mount = ("-v", f"{volume}:/data")
    owner = resources.run_once(
        *("--entrypoint", "sh", *mount, image, "-c"),
        "mkdir -p /data/auth && chown -R 0:0 /data && chmod 755 /data /data/auth"
        " && stat -c '%u:%g %a' /data /data/auth",
    )
    assert owner.splitlines() == ["0:0 755", "0:0 755"], owner

    # The image as it is deployed: its own entrypoint and user, the volume at /data.
    port = _free_block(1)
    container = resources.run(
        *("-p", f"127.0.0.1:{port}:3000", *mount),
        *("-e", "WA_DRIVER=sandbox", "-e", "WA_MODE=multi", "-e", "TENANTS=1", "-e", "PORT=3000"),
        *("-e", f"WHATSAPP_API_KEY=test-key-of-the-production-length-{resources.suffix}", image),
    )

    deadline = time.monotonic() + 60
    health: httpx.Response | None = None
    while time.monotonic() < deadline:
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
            break
        except httpx.HTTPError:
            if docker(resources.environ, "inspect", "-f", "{{.State.Running}}", container) != "true":
                break
            time.sleep(0.3)
    logs = docker(resources.environ, "logs", "--tail", "30", container)
    assert health is not None, f"/health never answered; last log lines:\n{logs}"
    assert health.status_code == 200, (health.status_code, health.text, logs)
    assert health.json()["auth_root_writable"] is True, health.text

    # PID 1 is node itself (the entrypoint exec'd it through setpriv), with every uid and gid 1000.
    status = docker(resources.environ, "exec", container, "cat", "/proc/1/status")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert fields["Name"].strip() == "node", status
    assert fields["Uid"].split() == [str(NODE_UID)] * 4, fields["Uid"]
    assert fields["Gid"].split() == [str(NODE_UID)] * 4, fields["Gid"]
    assert fields["Groups"].split() == [], fields["Groups"]
    # And seen from the engine: the container's only process (no root shell left behind) is node as 1000.
    top = docker(resources.environ, "top", container, "-o", "pid,uid,comm")
    assert [line.split()[1:] for line in top.splitlines()[1:]] == [[str(NODE_UID), "node"]], top

    # The session folder now belongs to uid 1000, and a session written there by the server does too.
    assert docker(resources.environ, "exec", container, "stat", "-c", "%u:%g", "/data/auth") == "1000:1000"
    headers = {"X-Api-Key": f"test-key-of-the-production-length-{resources.suffix}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
        assert client.get("/tenants/1/qr").status_code == 200
        assert client.post("/tenants/1/sandbox/scan").status_code in (200, 202)
    listing = docker(resources.environ, "exec", container, "find", "/data/auth", "-printf", "%U %p\\n")
    assert listing and all(line.split()[0] == str(NODE_UID) for line in listing.splitlines()), listing
