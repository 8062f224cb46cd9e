"""Errors a tenant can act on. The transport layer maps them to gRPC statuses."""

from dataclasses import dataclass, field
from enum import Enum


class ErrorKind(Enum):
    """Which class of failure, independent of the transport."""

    INVALID_ARGUMENT = "invalid_argument"
    FAILED_PRECONDITION = "failed_precondition"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    ABORTED = "aborted"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


@dataclass
class FieldViolation:
    field: str
    description: str


@dataclass
class ClarionError(Exception):
    """A refusal with a machine-readable `reason` (UPPER_SNAKE_CASE) and a
    message that names the field and the fix."""

    kind: ErrorKind
    reason: str
    message: str
    violations: list[FieldViolation] = field(default_factory=list)
    # Sent as Retry-After: when trying again is worthwhile (an outage, a rate).
    retry_after_seconds: int | None = None

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


def invalid(reason: str, field_path: str, message: str) -> ClarionError:
    """An INVALID_ARGUMENT error about one request field."""
    return ClarionError(
        ErrorKind.INVALID_ARGUMENT, reason, message, [FieldViolation(field_path, message)]
    )


def limit_reached(reason: str, message: str) -> ClarionError:
    """A count limit (templates, versions, API keys) the tenant is at; 400 like a field error."""
    return ClarionError(ErrorKind.FAILED_PRECONDITION, reason, message)


def not_found(what: str) -> ClarionError:
    return ClarionError(ErrorKind.NOT_FOUND, "NOT_FOUND", f"{what} not found")
