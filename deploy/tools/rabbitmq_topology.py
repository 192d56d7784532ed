"""Write the RabbitMQ topology the code declares as a definitions file and as Messaging Topology Operator resources.

    .venv/bin/python deploy/tools/rabbitmq_topology.py          # rewrite definitions.json and deploy/k8s/topology/
    .venv/bin/python deploy/tools/rabbitmq_topology.py --check  # exit 1 when a committed file differs from the code

The source of truth is the code (`ConsumerTopology` of notifier and audit with default settings, and booking's
exchange); tests/deploy/test_rabbitmq_topology.py reads the committed files back and compares them to it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from audit.app import topology as audit_topology
from audit.settings import Settings as AuditSettings
from booking_contracts import EXCHANGE
from notifier.app import topology as notifier_topology
from notifier.settings import Settings as NotifierSettings
from service_runtime.amqp import BindingSpec, ConsumerTopology, ExchangeSpec, QueueSpec

DEPLOY = Path(__file__).resolve().parents[1]
DEFINITIONS = DEPLOY / "rabbitmq" / "definitions.json"
TOPOLOGY_DIR = DEPLOY / "k8s" / "topology"
VHOST = "/"
CLUSTER = "rabbitmq"  # the RabbitmqCluster the Messaging Topology Operator talks to
CLUSTER_NAMESPACE = "rabbitmq"  # topology resources live beside their cluster

# Tunables that are not queue arguments (arguments cannot change on an existing queue; policies can).
POLICIES: list[dict[str, Any]] = [
    {
        "name": "petsit-quorum-leaders-balanced",
        "pattern": r"^(notifier|audit)\.job_request_events(\..*)?$",
        "apply-to": "queues",
        "priority": 0,
        "definition": {"queue-leader-locator": "balanced"},
    },
    {
        # `dlq list` looks at parked messages by putting them back (a return). RabbitMQ 4 gives quorum queues a
        # delivery limit of 20 by default and drops a message returned more often from a queue without a
        # dead-letter exchange, as the DLQs are: lift it there. One policy applies per queue (the highest priority),
        # so this one repeats the leader locator.
        "name": "petsit-dead-letter-queues",
        "pattern": r"^(notifier|audit)\.job_request_events\.dlq$",
        "apply-to": "queues",
        "priority": 1,
        "definition": {"queue-leader-locator": "balanced", "delivery-limit": 1_000_000},
    },
]


def consumer_topologies() -> list[ConsumerTopology]:
    """The consumers' topologies with default settings (what a deployment without QUEUE/RETRY_DELAYS_MS runs)."""
    # The defaults, not this shell's environment: a QUEUE or RETRY_DELAYS_MS exported here would name the queues of
    # both services alike (they read the same variable names).
    return [notifier_topology(NotifierSettings.model_construct()), audit_topology(AuditSettings.model_construct())]


def declared() -> tuple[list[ExchangeSpec], list[QueueSpec], list[BindingSpec]]:
    """Everything the services declare: booking's exchange, then each consumer's exchanges, queues and bindings."""
    exchanges = {EXCHANGE: ExchangeSpec(EXCHANGE, "topic")}
    queues: dict[str, QueueSpec] = {}
    bindings: list[BindingSpec] = []
    for topology in consumer_topologies():
        exchanges.update({spec.name: spec for spec in topology.exchanges()})
        queues.update({spec.name: spec for spec in topology.queues()})
        bindings += [b for b in topology.bindings() if b not in bindings]
    return list(exchanges.values()), list(queues.values()), bindings


def definitions() -> dict[str, Any]:
    """The topology in RabbitMQ's definitions format (`rabbitmqctl import_definitions`, or `load_definitions`)."""
    exchanges, queues, bindings = declared()
    return {
        "vhosts": [{"name": VHOST}],
        "exchanges": [
            {
                "name": e.name,
                "vhost": VHOST,
                "type": e.type,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for e in exchanges
        ],
        "queues": [
            {"name": q.name, "vhost": VHOST, "durable": True, "auto_delete": False, "arguments": q.arguments}
            for q in queues
        ],
        "bindings": [
            {
                "source": b.exchange,
                "vhost": VHOST,
                "destination": b.queue,
                "destination_type": "queue",
                "routing_key": b.routing_key,
                "arguments": {},
            }
            for b in bindings
        ],
        "policies": [{"vhost": VHOST, **p} for p in POLICIES],
    }


def k8s_name(*parts: str) -> str:
    """A DNS-1123 resource name from RabbitMQ names (which may hold `_`, `*`, `#`)."""
    text = "-".join(p for p in parts if p)
    text = text.replace("*", "star").replace("#", "hash")
    return re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-.")[:253]


def operator_resources() -> list[dict[str, Any]]:
    """The same topology as Messaging Topology Operator resources (rabbitmq.com/v1beta1)."""
    exchanges, queues, bindings = declared()
    ref = {"name": CLUSTER}
    resources: list[dict[str, Any]] = []
    for e in exchanges:
        spec = {"name": e.name, "vhost": VHOST, "type": e.type, "durable": True, "autoDelete": False}
        resources.append(_resource("Exchange", k8s_name("exchange", e.name), {**spec, "rabbitmqClusterReference": ref}))
    for q in queues:
        arguments = {k: v for k, v in q.arguments.items() if k != "x-queue-type"}
        spec = {
            "name": q.name,
            "vhost": VHOST,
            "type": q.arguments["x-queue-type"],
            "durable": True,
            "autoDelete": False,
            "arguments": arguments,
            "rabbitmqClusterReference": ref,
        }
        resources.append(_resource("Queue", k8s_name("queue", q.name), spec))
    for b in bindings:
        spec = {
            "vhost": VHOST,
            "source": b.exchange,
            "destination": b.queue,
            "destinationType": "queue",
            "routingKey": b.routing_key,
            "rabbitmqClusterReference": ref,
        }
        resources.append(_resource("Binding", k8s_name("binding", b.exchange, b.queue, b.routing_key), spec))
    for p in POLICIES:
        spec = {
            "name": p["name"],
            "vhost": VHOST,
            "pattern": p["pattern"],
            "applyTo": p["apply-to"],
            "priority": p["priority"],
            "definition": p["definition"],
            "rabbitmqClusterReference": ref,
        }
        resources.append(_resource("Policy", k8s_name("policy", p["name"]), spec))
    return resources


def _resource(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "rabbitmq.com/v1beta1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def rendered() -> dict[Path, str]:
    """Every generated file and its content."""
    header = "# Generated by deploy/tools/rabbitmq_topology.py from the code's declared topology: do not edit.\n"
    topology_yaml = header + yaml.safe_dump_all(operator_resources(), sort_keys=False)
    kustomization = header + yaml.safe_dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": CLUSTER_NAMESPACE,
            "labels": [{"pairs": {"app.kubernetes.io/part-of": "petsit-booking"}}],
            "resources": ["rabbitmq-topology.yaml"],
        },
        sort_keys=False,
    )
    return {
        DEFINITIONS: json.dumps(definitions(), indent=2) + "\n",
        TOPOLOGY_DIR / "rabbitmq-topology.yaml": topology_yaml,
        TOPOLOGY_DIR / "kustomization.yaml": kustomization,
    }


def main(argv: list[str]) -> int:
    stale = [path for path, text in rendered().items() if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"stale: {path} (run python deploy/tools/rabbitmq_topology.py)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
