"""Maps domain errors to gRPC statuses carrying AIP-193 details, which Envoy
turns into `{"code", "message", "details"}` JSON."""

from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.domain.errors import ClarionError, ErrorKind

DOMAIN = "clarion"

_CODES: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.ABORTED: grpc.StatusCode.ABORTED,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}


def to_status(error: ClarionError) -> status_pb2.Status:
    code = _CODES[error.kind]
    status = status_pb2.Status(code=code.value[0], message=error.message)
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN))
    status.details.append(info)
    if error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description, reason=error.reason
                )
                for v in error.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        status.details.append(packed)
    return status


async def abort(context: grpc.aio.ServicerContext, error: ClarionError) -> NoReturn:
    status = rpc_status.to_status(to_status(error))
    metadata = tuple(status.trailing_metadata)
    if error.retry_after_seconds is not None:
        # Envoy passes it on to the HTTP client as a Retry-After header.
        metadata += (("retry-after", str(error.retry_after_seconds)),)
    await context.abort(status.code, status.details, trailing_metadata=metadata)
    raise AssertionError("context.abort always raises")
