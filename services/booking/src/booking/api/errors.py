"""The one table from booking's domain errors to HTTP statuses."""

from __future__ import annotations

from booking.domain import JobRequestAlreadyCancelled, JobRequestAlreadyScheduled
from booking.handlers import ChangeContended, DateInThePast, IdempotencyKeyReused
from service_runtime.errors import DomainError, InvalidReference, NotFound

ERROR_STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    JobRequestAlreadyScheduled: 409,
    JobRequestAlreadyCancelled: 409,
    ChangeContended: 409,
    InvalidReference: 422,
    DateInThePast: 422,
    IdempotencyKeyReused: 422,
}
