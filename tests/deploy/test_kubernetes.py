"""kustomize builds every kustomization; the output validates offline (Kubernetes schemas, CRD schemas in the repo)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import validate as k8s_validate
from pydantic import ValidationError
from pymongo.uri_parser import parse_uri

from audit.app import topology as audit_topology
from audit.settings import Settings as AuditSettings
from booking.settings import Settings as BookingSettings
from notifier.app import topology as notifier_topology
from notifier.settings import Settings as NotifierSettings

ROOT = Path(__file__).resolve().parents[2]
CRD_SCHEMAS = ROOT / "deploy" / "schemas" / "crds"
KUBERNETES_VERSIONS = ["1.31", kubernetes_validate.utils.latest_version()]
KUSTOMIZATIONS = ["base", "overlays/production", "topology"]
SETTINGS = {"booking": BookingSettings, "notifier": NotifierSettings, "audit": AuditSettings}
PORTS = {"booking": 8001, "notifier": 8002, "audit": 8003}
# Env names the Deployments compose AMQP_URL and MONGODB_URL from; not settings of the services.
URL_PARTS = {"AMQP_HOST", "AMQP_PORT", "AMQP_USERNAME", "AMQP_PASSWORD", "MONGODB_HOSTS", "MONGODB_OPTIONS"}
URL_PARTS |= {"MONGODB_USERNAME", "MONGODB_PASSWORD"}

Build = Callable[[str], list[dict[str, Any]]]


def crd_schema(doc: dict[str, Any]) -> Path | None:
    group, _, version = doc["apiVersion"].rpartition("/")
    path = CRD_SCHEMAS / group / f"{doc['kind'].lower()}_{version}.json"
    return path if group and "." in group and not group.endswith("k8s.io") else None


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_kustomization_builds_and_validates(kustomize_build: Build, kustomization: str) -> None:
    docs = kustomize_build(kustomization)
    assert docs
    for doc in docs:
        where = f"{kustomization}: {doc['kind']}/{doc['metadata']['name']}"
        schema_path = crd_schema(doc)
        if schema_path is not None:
            assert schema_path.exists(), f"{where}: no CRD schema kept in deploy/schemas/crds"
            jsonschema.validate(doc, json.loads(schema_path.read_text()))
        else:
            for version in KUBERNETES_VERSIONS:
                try:
                    k8s_validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    pytest.fail(f"{where} (Kubernetes {version}): {exc.message} at {list(exc.path)}")


def test_crd_schemas_catch_a_misspelt_field() -> None:
    schema = json.loads((CRD_SCHEMAS / "keda.sh" / "scaledobject_v1alpha1.json").read_text())
    doc = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"name": "x"}, "minReplicas": 1, "triggers": []},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("kustomization", ["base", "overlays/production"])
def test_each_service_has_probes_resources_drain_time_service_and_budget(
    kustomize_build: Build, kustomization: str
) -> None:
    docs = kustomize_build(kustomization)
    deployments, services, budgets = (
        by_kind(docs, "Deployment"),
        by_kind(docs, "Service"),
        by_kind(docs, "PodDisruptionBudget"),
    )
    assert set(deployments) == set(SETTINGS)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"  # the process only
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz/api"  # the database (broker reported)
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert set(container["resources"]) == {"requests", "limits"}
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
        assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
        pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
        # preStop, then up to 30 s of HTTP drain (uvicorn), then up to 25 s for a consumer's in-flight messages.
        needed = pre_stop + 30 + (25 if name != "booking" else 0)
        assert pod["terminationGracePeriodSeconds"] > needed
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert "replicas" not in deployment["spec"]  # the autoscaler owns it
        (port,) = container["ports"]
        assert port == {"name": "http", "containerPort": PORTS[name], "protocol": "TCP"}
        assert services[name]["spec"]["ports"][0]["name"] == "http"  # the ServiceMonitors scrape port `http`
        assert services[name]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        budget = budgets[name]["spec"]
        assert budget["maxUnavailable"] == 1 and budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        assert budget["selector"] == deployment["spec"]["selector"]


@pytest.mark.parametrize("kustomization", ["base", "overlays/production"])
def test_booking_scales_on_cpu_and_consumers_on_their_queue(kustomize_build: Build, kustomization: str) -> None:
    docs = kustomize_build(kustomization)
    hpas, scaled = by_kind(docs, "HorizontalPodAutoscaler"), by_kind(docs, "ScaledObject")
    auths = by_kind(docs, "TriggerAuthentication")
    assert set(hpas) == {"booking"}  # KEDA owns the consumers' HPAs: no second one
    assert hpas["booking"]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    queues = {"notifier": NotifierSettings().queue, "audit": AuditSettings().queue}
    assert set(scaled) == set(queues)
    for name, queue in queues.items():
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"]["name"] == name and spec["minReplicaCount"] >= 1
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"]["queueName"] == queue
        assert trigger["metadata"]["protocol"] == "http"  # counts unacked messages too, not only ready ones
        assert trigger["authenticationRef"]["name"] in auths


def container_env(docs: list[dict[str, Any]], service: str, secrets: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet resolves it, with placeholder secret values."""
    config_maps = by_kind(docs, "ConfigMap")
    (container,) = by_kind(docs, "Deployment")[service]["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], var["value"])
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets.get(ref["key"], f"{ref['name']}-{ref['key']}")
    return env


SECRETS = {"AUTH_SECRET": "a" * 48, "METRICS_TOKEN": "m" * 48, "username": "svc", "password": "p4ssw0rd"}


@pytest.mark.parametrize("kustomization", ["base", "overlays/production"])
@pytest.mark.parametrize("service", SETTINGS)
def test_services_read_their_settings_from_the_rendered_environment(
    kustomize_build: Build, kustomization: str, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = container_env(kustomize_build(kustomization), service, SECRETS)
    fields = {name.upper() for name in SETTINGS[service].model_fields}
    assert set(env) - URL_PARTS <= fields, "a variable the service does not read"
    assert {"AMQP_URL", "MONGODB_URL", "AUTH_SECRET", "METRICS_TOKEN", "HTTP_PORT", "MONGODB_DATABASE"} <= set(env)
    assert "ENVIRONMENT" in env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = SETTINGS[service]()  # refuses a weak AUTH_SECRET outside local mode
    assert settings.environment == "production"
    assert settings.http_host == "0.0.0.0" and settings.http_port == PORTS[service]
    assert settings.mongodb_database == service
    assert settings.amqp_url.startswith("amqp://svc:p4ssw0rd@")
    if service != "booking":
        topology = (notifier_topology if service == "notifier" else audit_topology)(settings)  # type: ignore[arg-type]
        default = (notifier_topology if service == "notifier" else audit_topology)(SETTINGS[service]())  # type: ignore[arg-type]
        assert topology.queues() == default.queues()  # what deploy/rabbitmq/definitions.json declares


@pytest.mark.parametrize(
    ("service", "variable"),
    [("booking", "NOTIFIER_URL"), ("booking", "AUDIT_URL"), ("notifier", "CORS_ORIGINS"), ("audit", "CORS_ORIGINS")],
)
def test_outside_local_mode_what_the_admin_pages_call_must_name_public_hosts(
    kustomize_build: Build, service: str, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = container_env(kustomize_build("overlays/production"), service, SECRETS)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(variable)  # left at its local default: 127.0.0.1 / localhost
    with pytest.raises(ValidationError, match=variable):
        SETTINGS[service]()
    monkeypatch.setenv(variable, "http://localhost:9000")
    with pytest.raises(ValidationError, match=variable):
        SETTINGS[service]()


def test_production_points_at_a_mongodb_replica_set_with_majority_writes(kustomize_build: Build) -> None:
    docs = kustomize_build("overlays/production")
    for service in SETTINGS:
        uri = parse_uri(container_env(docs, service, SECRETS)["MONGODB_URL"])
        assert len(uri["nodelist"]) >= 3
        assert uri["options"]["replicaSet"]
        assert uri["options"]["w"] == "majority"
        assert uri["options"]["retryWrites"] is True
        assert (uri["username"], uri["password"]) == ("svc", "p4ssw0rd")


def test_production_creates_no_secrets_and_uses_released_images(kustomize_build: Build) -> None:
    docs = kustomize_build("overlays/production")
    assert not by_kind(docs, "Secret")  # they come from the cluster
    for name, deployment in by_kind(docs, "Deployment").items():
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert re.fullmatch(rf"[\w.\-/]+/{name}:\d+\.\d+\.\d+", image), image
    assert {"ServiceMonitor", "PrometheusRule"} <= {d["kind"] for d in docs}


def test_prometheus_scrapes_with_the_metrics_token_the_services_require(kustomize_build: Build) -> None:
    docs = kustomize_build("overlays/production")
    monitors = by_kind(docs, "ServiceMonitor")
    assert set(monitors) == set(SETTINGS)
    for name, monitor in monitors.items():
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["authorization"]["credentials"] == {"name": "metrics-token", "key": "METRICS_TOKEN"}, name
        env = container_env(docs, name, SECRETS)
        assert env["METRICS_TOKEN"] == SECRETS["METRICS_TOKEN"]  # the same Secret key the services check


def test_alerts_use_metrics_the_code_exports() -> None:
    rules = (ROOT / "deploy" / "k8s" / "components" / "monitoring" / "prometheusrule.yaml").read_text()
    sources = "".join(p.read_text() for p in ROOT.glob("services/*/src/**/*.py"))
    for metric in re.findall(r"\b(outbox_\w+|messaging_\w+)", rules):
        assert f'"{metric.removesuffix("_total")}"' in sources, metric
