"""The event envelope: a CloudEvents 1.0 event in JSON structured mode."""

from __future__ import annotations

import re
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"

DataT = TypeVar("DataT")

PUBLISHED_VERSIONS_PATTERN = r"^[1-9][0-9]{0,3}(,[1-9][0-9]{0,3}){0,9}$"


def _specversion_required(schema: dict[str, Any]) -> None:
    # CloudEvents requires `specversion`, and so do our consumers (EventMeta): the schema must not call it optional
    # because the model has a default for building events.
    required = schema.setdefault("required", [])
    if "specversion" not in required:
        required.insert(0, "specversion")


class CloudEvent(BaseModel, Generic[DataT]):
    """CloudEvents 1.0 envelope; python names follow the issue, aliases are the wire attributes."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra=_specversion_required,
    )

    specversion: Literal["1.0"] = "1.0"  # a default to build events with; required on the wire (the schema says so)
    id: UUID = Field(description="Event id: the idempotency key of every consumer.")
    type: str = Field(description="Event type, equal to the AMQP routing key, e.g. job_request.cancelled.")
    source: str = Field(description="URI reference of the producing service, e.g. /booking.")
    dataschema: str = Field(description="URI naming the data schema and its major version.")
    occurred_at: AwareDatetime = Field(
        alias="time", description="When the change happened: an RFC 3339 time with its offset (booking writes UTC)."
    )
    correlation_id: str = Field(alias="correlationid", description="Correlation id of the causing request.")
    subject: str = Field(description="The job request id the event is about.")
    datacontenttype: Literal["application/json"] = "application/json"
    published_versions: str | None = Field(
        default=None,
        alias="publishedversions",
        exclude_if=lambda v: v is None,
        # Documented, not enforced: a reader that knows this event's version does not need the attribute, and a
        # malformed one must not cost it the event (published_versions() reads only the documented form).
        json_schema_extra={"pattern": PUBLISHED_VERSIONS_PATTERN},
        description="Extension, set while a breaking change is published side by side: every major version this "
        "same change is published in, comma-separated (`1,2`); the twins share the `id`. A consumer that does not "
        "know this event's version but knows one listed here acknowledges it and reads the twin. Absent: this "
        "version only.",
    )
    data: DataT

    @property
    def version(self) -> int:
        """Major version of the data schema, read from `dataschema` (`.../v1` → 1)."""
        return version_of(self.dataschema)


class EventMeta(BaseModel):
    """The envelope's attributes without its data: what a consumer reads before choosing a model."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    specversion: Literal["1.0"]
    id: UUID
    type: str
    source: str
    dataschema: str
    occurred_at: AwareDatetime = Field(alias="time")
    correlation_id: str = Field(default="", alias="correlationid")
    subject: str = ""
    data: dict[str, Any]

    @property
    def version(self) -> int:
        """Major version of the data schema."""
        return version_of(self.dataschema)


def version_of(dataschema: str) -> int:
    """Return the major version at the end of a dataschema URI, 0 when it has none."""
    tail = dataschema.rstrip("/").rsplit("/", 1)[-1]
    if tail.startswith("v") and tail[1:].isdigit():
        return int(tail[1:])
    return 0


def published_versions(raw: dict[str, Any]) -> frozenset[int]:
    """The major versions a raw event says its change is published in (`publishedversions`); empty when it does
    not say, or says it in a form other than the documented one."""
    value = raw.get("publishedversions")
    if not isinstance(value, str) or re.fullmatch(PUBLISHED_VERSIONS_PATTERN, value) is None:
        return frozenset()
    return frozenset(int(v) for v in value.split(","))
