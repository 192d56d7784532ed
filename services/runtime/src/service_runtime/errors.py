"""Error classes every service shares: domain errors with a stable code, and the consumer's failure kinds."""

from __future__ import annotations


class DomainError(Exception):
    """A refused request: `code` is machine-readable and stable, the message is for people."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know it exists."""

    code = "not_found"


class InvalidReference(DomainError):
    """The request names something (a service, a pet) that is not the caller's to use."""

    code = "invalid_reference"


class TransientError(Exception):
    """A dependency is down for now (SMTP, database): retry the message later."""


class Unavailable(TransientError):
    """Not a failure of this message (own database unreachable, another delivery busy with it): retry later
    without using up its attempts."""


class PermanentError(Exception):
    """The message can never be processed: dead-letter it with this reason."""
