"""JSON Schemas and the AsyncAPI document of booking's events, derived from the models (no I/O)."""

from __future__ import annotations

import json
import re
from typing import Any

from booking_contracts.envelope import CONTENT_TYPE, CloudEvent
from booking_contracts.events import EVENTS, EXCHANGE, SCHEMA_BASE, data_model_for, dataschema_for

CONTRACTS_VERSION = "1.0.0"
"""Version of this package (pyproject.toml), also the AsyncAPI document's `info.version`."""

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING_VERSION = "0.3.0"
BROKER_HOST = "rabbitmq:5672"

JsonObject = dict[str, Any]

_LOCAL_REF = re.compile(r"^#/\$defs/(?P<name>[^/]+)$")


def schema_name(event_type: str, version: int) -> str:
    """Return the name of an event's schema: its file stem, component key and message id."""
    return f"{event_type}.v{version}"


def event_json_schema(event_type: str, version: int) -> JsonObject:
    """Return the JSON Schema (draft 2020-12, wire names) of the CloudEvent carrying this event."""
    model = data_model_for(event_type, version)
    # Serialization mode describes what `model_dump_json(by_alias=True)` publishes.
    schema = CloudEvent[model].model_json_schema(by_alias=True, mode="serialization")  # type: ignore[valid-type]
    properties = schema["properties"]
    # The envelope model takes any type and dataschema; this event's are fixed.
    properties["type"]["const"] = event_type
    properties["dataschema"]["const"] = dataschema_for(event_type, version)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{SCHEMA_BASE}/{schema_name(event_type, version)}.json",
        **schema,
        "title": f"{_human_name(event_type)} v{version}",
        "description": (
            f"CloudEvents 1.0 event in JSON structured mode, routing key {event_type} on {EXCHANGE}; "
            f"its data: {_summary(model.__doc__)}"
        ),
    }


def asyncapi_document() -> JsonObject:
    """Return the AsyncAPI 3.0.0 document of every event booking publishes."""
    schemas: JsonObject = {}
    messages: JsonObject = {}
    channels: JsonObject = {}
    operations: JsonObject = {}
    for event_type, version in sorted(EVENTS):
        name = schema_name(event_type, version)
        _add_component_schemas(schemas, name, event_json_schema(event_type, version))
        messages[name] = _message(event_type, version)
        channel = channels.setdefault(event_type, _channel(event_type))
        channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        operation = operations.setdefault(_operation_id(event_type), _operation(event_type))
        operation["messages"].append({"$ref": f"#/channels/{event_type}/messages/{name}"})
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Booking events",
            "version": CONTRACTS_VERSION,
            "description": (
                f"Events booking publishes on the durable topic exchange `{EXCHANGE}`, routing key = event type. "
                "Each message is a CloudEvents 1.0 event in JSON structured mode."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "rabbitmq": {
                "host": BROKER_HOST,
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "RabbitMQ broker of the platform.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def generated_files() -> dict[str, str]:
    """Return the text of every generated file, keyed by its path relative to the contracts directory."""
    files = {
        f"schemas/{schema_name(event_type, version)}.json": render_json(event_json_schema(event_type, version))
        for event_type, version in sorted(EVENTS)
    }
    files["asyncapi.json"] = render_json(asyncapi_document())
    return files


def render_json(document: JsonObject) -> str:
    """Return a document as the deterministic JSON text committed to the repository."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _add_component_schemas(schemas: JsonObject, name: str, event_schema: JsonObject) -> None:
    # AsyncAPI tools resolve "#/..." against the whole document, not against the embedded schema:
    # hoist $defs into components/schemas and point the refs there. $id would move the base URI, so drop it.
    envelope = {k: v for k, v in event_schema.items() if k not in ("$schema", "$id", "$defs")}
    found = {name: envelope, **event_schema.get("$defs", {})}
    for key, schema in found.items():
        rewritten = _rewrite_refs(schema)
        if key in schemas and schemas[key] != rewritten:
            raise ValueError(f"two different schemas are named {key}: give one of the models another name")
        schemas[key] = rewritten


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        rewritten = {key: _rewrite_refs(value) for key, value in node.items()}
        ref = rewritten.get("$ref")
        if isinstance(ref, str) and (match := _LOCAL_REF.match(ref)):
            rewritten["$ref"] = f"#/components/schemas/{match['name']}"
        return rewritten
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _message(event_type: str, version: int) -> JsonObject:
    model = data_model_for(event_type, version)
    return {
        "name": event_type,
        "title": f"{_human_name(event_type)} v{version}",
        "summary": _summary(model.__doc__),
        "contentType": CONTENT_TYPE,
        "payload": {"$ref": f"#/components/schemas/{schema_name(event_type, version)}"},
        "correlationId": {
            "description": "Correlation id of the request that caused the event (also the AMQP correlation_id).",
            "location": "$message.payload#/correlationid",
        },
        "bindings": {"amqp": {"messageType": event_type, "bindingVersion": AMQP_BINDING_VERSION}},
    }


def _channel(event_type: str) -> JsonObject:
    return {
        "address": event_type,
        "description": f"Routing key `{event_type}` on the topic exchange `{EXCHANGE}`.",
        "messages": {},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {"name": EXCHANGE, "type": "topic", "durable": True, "vhost": "/"},
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def _operation(event_type: str) -> JsonObject:
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{event_type}"},
        "summary": f"Booking publishes {event_type} as a persistent message.",
        "messages": [],
        "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": AMQP_BINDING_VERSION}},
    }


def _operation_id(event_type: str) -> str:
    return "send" + "".join(part.capitalize() for part in re.split(r"[._]", event_type))


def _human_name(event_type: str) -> str:
    return re.sub(r"[._]", " ", event_type).capitalize()


def _summary(docstring: str | None) -> str:
    return (docstring or "").strip().split("\n", 1)[0]
