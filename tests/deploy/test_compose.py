"""docker-compose.yml: valid against the Compose specification (copy in deploy/schemas), healthy start order."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ONE_SHOT = {"seed-demo"}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_validates_against_the_compose_specification() -> None:
    schema = ROOT / "deploy" / "schemas" / "compose-spec.json"
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema), str(COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = compose()["services"]
    assert {"rabbitmq", "mongodb", "mailpit", "booking", "notifier", "audit", "seed-demo"} <= set(services)
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] == "CMD", name


def test_infrastructure_healthchecks_are_the_documented_ones() -> None:
    services = compose()["services"]
    assert services["rabbitmq"]["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    assert services["mongodb"]["healthcheck"]["test"][:2] == ["CMD", "mongosh"]
    assert services["mailpit"]["healthcheck"]["test"] == ["CMD", "/mailpit", "readyz"]


def test_images_are_pinned_to_a_version() -> None:
    for name, service in compose()["services"].items():
        image = service["image"]
        if "build" in service:
            continue
        tag = image.rsplit(":", 1)[1] if ":" in image else ""
        assert tag and tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), f"{name}: {image}"
    assert compose()["services"]["mongodb"]["image"].startswith("mongo:7.0.")


def test_services_start_after_what_they_need_is_healthy() -> None:
    services = compose()["services"]
    for name in ("booking", "notifier", "audit", "seed-demo"):
        needs = services[name]["depends_on"]
        assert needs["rabbitmq" if name != "seed-demo" else "mongodb"]["condition"] == "service_healthy"
        assert all(dep["condition"] in {"service_healthy", "service_completed_successfully"} for dep in needs.values())
    assert services["notifier"]["depends_on"]["mailpit"]["condition"] == "service_healthy"
    for consumer in ("booking", "notifier", "audit"):
        assert services["seed-demo"]["depends_on"][consumer]["condition"] == "service_healthy"
    for service in services.values():
        for dependency in service.get("depends_on", {}):
            if dependency in ONE_SHOT:
                assert service["depends_on"][dependency]["condition"] == "service_completed_successfully"


def test_service_containers_are_built_from_their_dockerfile_target_and_reachable() -> None:
    targets = {
        re.split(r"\s+AS\s+", i["value"], flags=re.IGNORECASE)[-1]
        for i in DockerfileParser(path=str(ROOT / "Dockerfile")).structure
        if i["instruction"] == "FROM"
    }
    services = compose()["services"]
    for name, port in (("booking", 8001), ("notifier", 8002), ("audit", 8003)):
        service = services[name]
        assert service["build"]["target"] == name and name in targets
        assert service["environment"]["HTTP_HOST"] == "0.0.0.0"
        assert service["environment"]["HTTP_PORT"] == str(port)
        assert f"127.0.0.1:{port}:{port}" in service["ports"]
    assert services["seed-demo"]["command"] == ["seed-demo"]
    assert services["notifier"]["environment"]["SMTP_HOST"] == "mailpit"


def test_consumers_get_time_to_drain_before_docker_kills_them() -> None:
    # The services take up to 30 s of HTTP drain and 25 s for in-flight messages; Docker's default is 10 s.
    services = compose()["services"]
    for name in ("notifier", "audit"):
        assert _seconds(services[name]["stop_grace_period"]) >= 60
    assert _seconds(services["booking"]["stop_grace_period"]) >= 35


def test_rabbitmq_exports_prometheus_metrics() -> None:
    mounts = compose()["services"]["rabbitmq"]["volumes"]
    assert any(m.endswith(":/etc/rabbitmq/enabled_plugins:ro") for m in mounts)
    assert "rabbitmq_prometheus" in (ROOT / "deploy" / "rabbitmq" / "enabled_plugins").read_text()


def test_rabbitmq_gets_the_platforms_broker_settings() -> None:
    mounts = compose()["services"]["rabbitmq"]["volumes"]
    assert "./deploy/rabbitmq/petsit.conf:/etc/rabbitmq/conf.d/20-petsit.conf:ro" in mounts
    assert "max_message_size = 1048576" in (ROOT / "deploy" / "rabbitmq" / "petsit.conf").read_text()


def _seconds(value: str) -> int:
    match = re.fullmatch(r"(\d+)s", value)
    assert match, value
    return int(match.group(1))
