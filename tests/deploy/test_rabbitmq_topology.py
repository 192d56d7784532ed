"""The RabbitMQ topology as code (definitions file, operator resources) equals what the services declare."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from audit.app import topology as audit_topology
from audit.settings import Settings as AuditSettings
from booking_contracts import EXCHANGE
from notifier.app import topology as notifier_topology
from notifier.settings import Settings as NotifierSettings
from service_runtime.amqp import ConsumerTopology

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"
OPERATOR_RESOURCES = ROOT / "deploy" / "k8s" / "topology" / "rabbitmq-topology.yaml"


def code_topology() -> tuple[set[tuple[str, str]], dict[str, dict[str, Any]], set[tuple[str, str, str]]]:
    """Exchanges (name, type), queues (name → arguments), bindings (exchange, queue, key) the code declares."""
    consumers: list[ConsumerTopology] = [notifier_topology(NotifierSettings()), audit_topology(AuditSettings())]
    exchanges = {(EXCHANGE, "topic")}  # booking's declare_events_exchange
    queues: dict[str, dict[str, Any]] = {}
    bindings: set[tuple[str, str, str]] = set()
    for topology in consumers:
        exchanges |= {(e.name, e.type) for e in topology.exchanges()}
        for q in topology.queues():
            assert queues.setdefault(q.name, q.arguments) == q.arguments, f"{q.name} declared two ways"
        bindings |= {(b.exchange, b.queue, b.routing_key) for b in topology.bindings()}
    return exchanges, queues, bindings


def test_definitions_file_declares_exactly_the_code_topology() -> None:
    definitions = json.loads(DEFINITIONS.read_text())
    exchanges, queues, bindings = code_topology()

    assert {(e["name"], e["type"]) for e in definitions["exchanges"]} == exchanges
    assert all(e["durable"] and not e["auto_delete"] and not e["internal"] for e in definitions["exchanges"])
    assert {q["name"]: q["arguments"] for q in definitions["queues"]} == queues
    assert len(definitions["queues"]) == len(queues)
    assert all(q["durable"] and not q["auto_delete"] for q in definitions["queues"])
    assert {(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]} == bindings
    assert all(b["destination_type"] == "queue" for b in definitions["bindings"])


def test_definitions_file_has_quorum_queues_with_delivery_limit_and_dead_letter_exchange() -> None:
    queues = {q["name"]: q["arguments"] for q in json.loads(DEFINITIONS.read_text())["queues"]}
    for work in ("notifier.job_request_events", "audit.job_request_events"):
        assert queues[work]["x-queue-type"] == "quorum"
        assert queues[work]["x-delivery-limit"] > 1
        assert queues[work]["x-dead-letter-exchange"] == f"{work}.dlx"
        assert queues[f"{work}.dlq"]["x-queue-type"] == "quorum"
    assert all(args["x-queue-type"] == "quorum" for args in queues.values())


def test_policies_set_no_argument_the_queues_already_declare() -> None:
    # A policy key that is also a queue argument would hide which one is in force.
    definitions = json.loads(DEFINITIONS.read_text())
    assert definitions["policies"]
    for policy in definitions["policies"]:
        matched = [q for q in definitions["queues"] if re.search(policy["pattern"], q["name"])]
        assert matched, policy["name"]
        argument_keys = {key.removeprefix("x-") for q in matched for key in q["arguments"]}
        assert not set(policy["definition"]) & argument_keys, policy["name"]


def test_operator_resources_declare_exactly_the_code_topology() -> None:
    docs = [d for d in yaml.safe_load_all(OPERATOR_RESOURCES.read_text()) if d]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc["spec"])
    exchanges, queues, bindings = code_topology()

    assert {(e["name"], e["type"]) for e in by_kind["Exchange"]} == exchanges
    assert {q["name"]: {"x-queue-type": q["type"], **q.get("arguments", {})} for q in by_kind["Queue"]} == queues
    assert {(b["source"], b["destination"], b["routingKey"]) for b in by_kind["Binding"]} == bindings
    assert all(q["durable"] and not q["autoDelete"] for q in by_kind["Queue"])
    policies = json.loads(DEFINITIONS.read_text())["policies"]
    assert {(p["name"], p["pattern"]) for p in by_kind["Policy"]} == {(p["name"], p["pattern"]) for p in policies}


def test_generated_files_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "tools" / "rabbitmq_topology.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
