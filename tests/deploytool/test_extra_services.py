"""Beyond one web app and one WhatsApp server: workers, other images, a Redis add-on, in every target."""

from __future__ import annotations

import pytest

from deploytool import pipeline
from deploytool.cli import main
from deploytool.targets.railway import RAILWAY_FILE, evaluate_like_cli

EXTRA = """
services:
  worker:
    kind: worker
    source: flask_service
    start: python -m flask_service worker
    local_start: exec python -c "import time; time.sleep(3600)"
    replicas: 2
  search:
    kind: generic
    image: getmeili/meilisearch:v1.7
    port: 7700
    health_command: curl -fsS http://127.0.0.1:7700/health
    volume: true
    volume_path: /meili_data
    env: {MEILI_ENV: development}
  thumbnails:
    kind: generic
    source: thumbs
    port: 7800
    health_path: /healthz
addons: [redis]
targets: [local, compose, railway]
railway: {repo: acme/chat}
"""


@pytest.fixture
def project(make_project):
    spec = make_project({"dev": EXTRA})
    (spec.parent / "thumbs").mkdir()
    (spec.parent / "thumbs" / "Dockerfile").write_text("FROM scratch\n")
    return spec


def artifact(rendered, name):
    return next(a for a in rendered.artifacts if a.path.endswith(name))


def test_extra_services_validate_with_every_consumer(project, capsys):
    (project.parent / "environments" / "cloud.yaml").write_text(
        EXTRA.replace("[local, compose, railway]", "[compose, railway]")
    )
    assert main(["--spec", str(project), "validate", "cloud"]) == 0, capsys.readouterr()


def test_compose_runs_workers_images_and_redis_with_healthchecks(project):
    rendered = pipeline.render_environment(project, "dev")
    services = artifact(rendered, "docker-compose.yml").document["services"]
    assert services["redis"]["image"] == "redis:7-alpine"
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for app in ("web", "worker"):
        assert services[app]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert services[app]["depends_on"]["redis"] == {"condition": "service_healthy"}
        assert services[app]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    worker = services["worker"]
    assert worker["command"] == ["sh", "-c", "exec python -m flask_service worker"]
    assert "ports" not in worker and worker["deploy"] == {"replicas": 2}
    assert worker["build"] == services["web"]["build"]  # the same image, another command
    # the image's HEALTHCHECK probes the web server a worker does not run: replaced by "alive"
    assert worker["healthcheck"]["test"] == ["CMD-SHELL", "exit 0"]
    assert "WHATSAPP_SERVER_URL" in worker["environment"] and "PORT" not in worker["environment"]
    search = services["search"]
    assert search["image"] == "getmeili/meilisearch:v1.7" and "build" not in search
    assert search["volumes"] == ["search-data:/meili_data"]
    assert search["healthcheck"]["test"] == ["CMD-SHELL", "curl -fsS http://127.0.0.1:7700/health"]
    assert search["environment"] == {"MEILI_ENV": "development", "PORT": "7700"}
    thumbs = services["thumbnails"]
    assert thumbs["build"]["dockerfile"] == "Dockerfile" and thumbs["ports"] == ["127.0.0.1:7800:7800"]
    assert "wget" in thumbs["healthcheck"]["test"][1]


def test_railway_declares_redis_images_and_workers(project):
    rendered = pipeline.render_environment(project, "dev")
    graph = evaluate_like_cli(artifact(rendered, RAILWAY_FILE).content)
    resources = {r["address"]: r for r in graph["resources"]}
    assert resources["database.Redis"]["engine"] == "redis"
    for app in ("web", "worker"):
        assert resources[f"service.{app}"]["variables"]["REDIS_URL"] == {
            "type": "reference",
            "resource": "database.Redis",
            "output": "REDIS_URL",
        }
    assert resources["service.worker"]["deploy"]["startCommand"] == "python -m flask_service worker"
    assert resources["service.search"]["source"] == {"type": "image", "image": "getmeili/meilisearch:v1.7"}
    assert resources["service.search"]["deploy"]["requiredMountPath"] == "/meili_data"
    assert resources["service.thumbnails"]["source"]["rootDirectory"] == "thumbs"


def test_local_runs_workers_and_takes_redis_from_the_environment(project):
    manifest = pipeline.render_environment(project, "dev").manifest
    by_name = {s.name: s for s in manifest.services}
    assert by_name["worker"].process is not None and by_name["worker"].port is None
    assert "REDIS_URL" in by_name["worker"].passthrough and "REDIS_URL" in by_name["web"].passthrough
    assert by_name["search"].process is None  # a public image has no local command
    # nothing to probe on a worker; the image's own health is compose's business
    assert {t.service for t in manifest.probe_targets if t.kind == "health"} >= {"web", "thumbnails"}
    findings = pipeline.findings_of(pipeline.render_environment(project, "dev"), consumers=False)
    assert "NO_START_COMMAND" in {f.code for f in findings}  # search: local target, image only


def test_a_third_flask_service_points_at_the_overlay_that_added_it(make_project, capsys):
    spec = make_project(
        {"dev": "tenants: ['1']\nservices:\n  admin:\n    kind: flask\n    source: x\n    port: 6000\n"}
    )
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    err = capsys.readouterr().err
    assert "environments/dev.yaml:4: services.admin: exactly one service of kind 'flask'" in err
    assert "kind: worker" in err


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ("{kind: generic, source: a, image: 'redis:7'}", "exactly one of `source` (a Dockerfile) or `image`"),
        ("{kind: generic}", "exactly one of `source` (a Dockerfile) or `image`"),
        ("{kind: worker, source: flask_service}", "a worker needs `start`"),
        ("{kind: worker, start: x}", "needs `source`"),
        ("{kind: generic, image: 'redis:7', health_path: /h}", "`health_path` needs a `port`"),
        ("{kind: worker, source: a, start: x, image: 'y:1'}", "`image` and `health_command` are for generic"),
    ],
)
def test_bad_extra_services_name_the_service(make_project, capsys, service, message):
    spec = make_project({"dev": f"services:\n  extra: {service}\n"})
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    err = capsys.readouterr().err
    assert "environments/dev.yaml:2: services.extra:" in err and message in err, err
