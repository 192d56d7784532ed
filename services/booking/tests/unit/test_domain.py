from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from booking import domain
from booking.domain import JobRequestAlreadyCancelled, JobRequestAlreadyScheduled, NoChange, Status
from tests.support.requests import ADMIN, CLIENT, NOW, a_request


def test_a_submitted_request_is_requested_cancellable_and_labelled_req() -> None:
    request = a_request()
    assert request.status is Status.REQUESTED and request.version == 1
    assert request.cancellable
    assert request.label == "REQ: Dog Walk 30 min"


def test_cancelling_a_requested_job_records_who_when_and_why() -> None:
    cancelled = domain.cancel(a_request(), by=CLIENT, now=NOW, reason="changed my mind")
    assert cancelled.status is Status.CANCELLED and cancelled.version == 2
    assert (cancelled.cancelled_at, cancelled.cancelled_by, cancelled.cancel_reason) == (NOW, CLIENT, "changed my mind")
    assert not cancelled.cancellable


def test_an_empty_reason_is_stored_as_no_reason() -> None:
    assert domain.cancel(a_request(), by=CLIENT, now=NOW, reason="").cancel_reason is None


def test_client_cannot_cancel_a_scheduled_job() -> None:
    scheduled = domain.schedule(a_request(), by=ADMIN, now=NOW)
    with pytest.raises(JobRequestAlreadyScheduled, match="scheduled jobs are cancelled another way"):
        domain.cancel(scheduled, by=CLIENT, now=NOW, reason=None)


def test_a_scheduled_job_has_no_req_label_and_is_not_cancellable() -> None:
    scheduled = domain.schedule(a_request(), by=ADMIN, now=NOW)
    assert scheduled.label == "Dog Walk 30 min"
    assert not scheduled.cancellable


def test_cancelling_twice_is_no_change_and_keeps_the_first_time() -> None:
    cancelled = domain.cancel(a_request(), by=CLIENT, now=NOW, reason=None)
    later = replace(cancelled).cancelled_at
    with pytest.raises(NoChange) as same:
        domain.cancel(cancelled, by=CLIENT, now=datetime(2027, 1, 1, tzinfo=UTC), reason=None)
    assert same.value.current.cancelled_at == later == NOW


def test_a_cancelled_request_cannot_be_scheduled() -> None:
    cancelled = domain.cancel(a_request(), by=CLIENT, now=NOW, reason=None)
    with pytest.raises(JobRequestAlreadyCancelled) as refused:
        domain.schedule(cancelled, by=ADMIN, now=NOW)
    assert refused.value.code == "job_request_cancelled"


def test_scheduling_twice_is_no_change() -> None:
    scheduled = domain.schedule(a_request(), by=ADMIN, now=NOW)
    with pytest.raises(NoChange):
        domain.schedule(scheduled, by=ADMIN, now=NOW)
