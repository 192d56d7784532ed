"""Personal values in logs: a keyed digest, the same across a deployment's services, useless without its secret."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from service_runtime import logs
from service_runtime.logs import redact, set_redaction_key


@pytest.fixture(autouse=True)
def _restore_key() -> Iterator[None]:
    key = logs._redaction_key
    yield
    logs._redaction_key = key


def test_the_same_secret_gives_the_same_digest_in_every_service_and_another_secret_another() -> None:
    set_redaction_key("deployment-secret-one-0123456789abcdef")
    first = redact("ann@client.example")
    set_redaction_key("deployment-secret-one-0123456789abcdef")
    assert redact("ann@client.example") == first
    set_redaction_key("deployment-secret-two-0123456789abcdef")
    assert redact("ann@client.example") != first


def test_a_digest_cannot_be_matched_by_hashing_a_list_of_guesses() -> None:
    set_redaction_key("deployment-secret-one-0123456789abcdef")
    digest = redact("ann@client.example")
    assert "ann" not in digest
    assert hashlib.sha256(b"ann@client.example").hexdigest()[:16] not in digest
