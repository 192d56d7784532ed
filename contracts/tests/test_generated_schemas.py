"""The committed JSON Schemas and AsyncAPI document are the models' own, and published events validate."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from booking_contracts import (
    EVENTS,
    SOURCE,
    Actor,
    BusinessRef,
    ClientRef,
    CloudEvent,
    JobRequestCancelled,
    JobRequestSubmitted,
    PetRef,
    ServiceRef,
    dataschema_for,
)
from booking_contracts.schemas import CONTRACTS_VERSION, generated_files, schema_name

CONTRACTS_DIR = Path(__file__).resolve().parents[1]
REGENERATE = "stale: run `python contracts/tools/generate_schemas.py` and commit the result"


def committed(relative: str) -> str:
    path = CONTRACTS_DIR / relative
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def committed_json(relative: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(committed(relative))
    return document


def a_cancellation(reason: str | None = "Pet is unwell") -> CloudEvent[JobRequestCancelled]:
    job_request_id = f"jr-{uuid4()}"
    data = JobRequestCancelled(
        job_request_id=job_request_id,
        client=ClientRef(id="c-1", name="Ada", email="ada@example.com"),
        business=BusinessRef(id="b-1", name="Paws", admin_email="admin@example.com", timezone="Europe/Paris"),
        service=ServiceRef(id="s-1", name="Walk", duration_minutes=30),
        pets=[PetRef(id="p-1", name="Rex", species="dog")],
        requested_date=date(2026, 12, 1),
        requested_start_time=time(10, 30),
        cancelled_at=datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
        cancelled_by=Actor(kind="client", id="c-1"),
        reason=reason,
    )
    return CloudEvent[JobRequestCancelled](
        id=uuid4(),
        type=JobRequestCancelled.TYPE,
        source=SOURCE,
        dataschema=dataschema_for(JobRequestCancelled.TYPE, JobRequestCancelled.VERSION),
        occurred_at=data.cancelled_at,
        correlation_id=f"corr-{uuid4()}",
        subject=job_request_id,
        data=data,
    )


def published(event: CloudEvent[Any]) -> Any:
    """Return the body exactly as the relay publishes it."""
    return json.loads(event.model_dump_json(by_alias=True))


def cancellation_schema_validator() -> Draft202012Validator:
    schema = committed_json(f"schemas/{schema_name(JobRequestCancelled.TYPE, JobRequestCancelled.VERSION)}.json")
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_committed_json_schemas_match_the_models() -> None:
    expected = {relative: text for relative, text in generated_files().items() if relative.startswith("schemas/")}
    assert len(expected) == len(EVENTS)
    for relative, text in expected.items():
        assert committed(relative) == text, f"contracts/{relative} is {REGENERATE}"


def test_no_committed_json_schema_lacks_a_model() -> None:
    committed_schemas = {f"schemas/{path.name}" for path in (CONTRACTS_DIR / "schemas").glob("*.json")}
    generated = {relative for relative in generated_files() if relative.startswith("schemas/")}
    assert committed_schemas == generated, REGENERATE


def test_committed_asyncapi_document_matches_the_models() -> None:
    assert committed("asyncapi.json") == generated_files()["asyncapi.json"], f"contracts/asyncapi.json is {REGENERATE}"


def test_asyncapi_version_is_the_contracts_package_version() -> None:
    pyproject = tomllib.loads(committed("pyproject.toml"))
    assert pyproject["project"]["version"] == CONTRACTS_VERSION
    assert committed_json("asyncapi.json")["info"]["version"] == CONTRACTS_VERSION


def test_every_reference_in_the_asyncapi_document_resolves() -> None:
    document = committed_json("asyncapi.json")
    refs = list(_refs(document))
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]


def test_a_published_cancellation_validates_against_its_json_schema() -> None:
    validator = cancellation_schema_validator()
    for event in (a_cancellation(), a_cancellation(reason=None)):
        validator.validate(published(event))


def test_a_published_cancellation_validates_against_its_asyncapi_payload() -> None:
    document = committed_json("asyncapi.json")
    registry: Registry[Any] = Registry().with_resource("urn:asyncapi", DRAFT7.create_resource(document))
    payload_ref = document["components"]["messages"]["job_request.cancelled.v1"]["payload"]["$ref"]
    validator = Draft7Validator({"$ref": f"urn:asyncapi{payload_ref}"}, registry=registry)
    validator.validate(published(a_cancellation()))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("type", JobRequestSubmitted.TYPE),
        ("dataschema", dataschema_for(JobRequestCancelled.TYPE, 2)),
        ("id", "not-a-uuid"),
    ],
)
def test_a_cancellation_with_a_wrong_envelope_attribute_does_not_validate(field: str, value: str) -> None:
    body = published(a_cancellation()) | {field: value}
    assert not cancellation_schema_validator().is_valid(body)


def test_a_cancellation_without_its_actor_does_not_validate() -> None:
    body = published(a_cancellation())
    del body["data"]["cancelled_by"]
    assert not cancellation_schema_validator().is_valid(body)


def _refs(node: Any) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)
