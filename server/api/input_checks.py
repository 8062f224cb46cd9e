"""Checks every request message for characters no field may hold, before a
handler runs: one place, whatever the method.

PostgreSQL text cannot store NUL at all (psycopg refuses it with DataError),
and the other C0 control characters have no meaning in a notification, a
name or a query; tab, line feed and carriage return stay allowed (bodies have
lines). Fields with stricter rules (an email subject is one line) check
those in the domain."""

import re
from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from server.domain.errors import ClarionError, ErrorKind, FieldViolation

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def refuse_control_characters(request: Any) -> None:
    """Raises INVALID_ARGUMENT naming every field that holds a control character."""
    if not isinstance(request, Message):
        return
    bad = [path for path, text in _strings(request, "") if _CONTROL.search(text)]
    if bad:
        raise ClarionError(
            ErrorKind.INVALID_ARGUMENT,
            "INVALID_CHARACTERS",
            f"{', '.join(bad)}: control characters (such as U+0000) are not allowed; "
            "remove them (tab and line breaks are fine)",
            [FieldViolation(path, "contains a control character") for path in bad],
        )


def _strings(message: Message, prefix: str) -> Iterator[tuple[str, str]]:
    """(field path, text) of every string in the message, map keys included;
    JSON values (`data`) are walked as JSON, with their keys as the path."""
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Struct":
        for key, item in message.fields.items():  # type: ignore[attr-defined]
            yield f"{prefix}{key}", key
            yield from _strings(item, f"{prefix}{key}")
        return
    if name == "google.protobuf.ListValue":
        for index, item in enumerate(message.values):  # type: ignore[attr-defined]
            yield from _strings(item, f"{prefix}[{index}]")
        return
    if name == "google.protobuf.Value":
        kind = message.WhichOneof("kind")
        if kind == "string_value":
            yield prefix, message.string_value  # type: ignore[attr-defined]
        elif kind == "struct_value":
            yield from _strings(message.struct_value, f"{prefix}.")  # type: ignore[attr-defined]
        elif kind == "list_value":
            yield from _strings(message.list_value, prefix)  # type: ignore[attr-defined]
        return
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            for text in value if field.is_repeated else [value]:
                yield path, text
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            entry = field.message_type
            if entry is not None and entry.GetOptions().map_entry:
                value_field = entry.fields_by_name["value"]
                for key, item in value.items():
                    yield f"{path}.{key}", str(key)
                    if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                        yield from _strings(item, f"{path}.{key}.")
                    elif value_field.type == FieldDescriptor.TYPE_STRING:
                        yield f"{path}.{key}", item
            else:
                for item in value if field.is_repeated else [value]:
                    yield from _strings(item, f"{path}.")
