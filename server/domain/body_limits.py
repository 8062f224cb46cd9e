"""How large a request may be, where two processes must agree: Envoy refuses
a body over its limit with a 413 in the API's words, so the API servers'
gRPC receive limit must never be the one that trips (its "Received message
larger than max" is an internal text)."""

# Any JSON request but a bulk: a send's data is capped far lower (32 KiB),
# and a template with every channel's fields at their longest fits.
MAX_JSON_BODY_BYTES = 4 * 1024 * 1024
# POST /api/v1/notifications/bulk: 10,000 recipients with their data.
MAX_BULK_BODY_BYTES = 16 * 1024 * 1024
# Transcoded to protobuf, JSON can grow: a number in `data` ("1," is 2 bytes)
# becomes a google.protobuf.Value of 11. Envoy's transcoder answers 413 past
# MAX_BULK_BODY_BYTES of protobuf (measured: 4 MB of JSON numbers is refused,
# 2 MB passes); eight times that is above any message Envoy can send.
MAX_GRPC_MESSAGE_BYTES = 8 * MAX_BULK_BODY_BYTES
# A streamed CSV upload, counted by Envoy from Content-Length and by the
# server as chunks arrive (a chunked upload declares no length).
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
