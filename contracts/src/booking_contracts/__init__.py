"""Event contracts of the booking platform (pydantic only, no I/O)."""

from booking_contracts.envelope import CONTENT_TYPE, CloudEvent, EventMeta
from booking_contracts.events import (
    EVENTS,
    EXCHANGE,
    SOURCE,
    Actor,
    BusinessRef,
    ClientRef,
    JobRequestCancelled,
    JobRequestEvent,
    JobRequestScheduled,
    JobRequestSubmitted,
    PetRef,
    ServiceRef,
    UnknownEventType,
    data_model_for,
    dataschema_for,
)

__all__ = [
    "CONTENT_TYPE",
    "EVENTS",
    "EXCHANGE",
    "SOURCE",
    "Actor",
    "BusinessRef",
    "ClientRef",
    "CloudEvent",
    "EventMeta",
    "JobRequestCancelled",
    "JobRequestEvent",
    "JobRequestScheduled",
    "JobRequestSubmitted",
    "PetRef",
    "ServiceRef",
    "UnknownEventType",
    "data_model_for",
    "dataschema_for",
]
