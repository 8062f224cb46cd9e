"""Reads an uploaded CSV of recipients as it streams in, one row at a time,
never holding the whole file."""

import codecs
import csv
import io
from collections.abc import AsyncIterator

from server.domain.errors import invalid
from server.domain.sending import BulkRow

RECIPIENT_COLUMNS = ("email", "phone", "slack_user_id")
DATA_PREFIX = "data."


async def csv_rows(chunks: AsyncIterator[bytes]) -> AsyncIterator[BulkRow]:
    """Rows of a UTF-8 CSV whose header names recipient columns and data.<key>
    columns. A quoted field may span lines and chunks."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
    pending = ""
    header: list[str] | None = None
    index = 0
    async for chunk in chunks:
        try:
            pending += decoder.decode(chunk)
        except UnicodeDecodeError:
            raise invalid("INVALID_ARGUMENT", "body", "the CSV is not UTF-8 text") from None
        cut = _complete_records_end(pending)
        if cut <= 0:
            continue
        complete, pending = pending[:cut], pending[cut:]
        for record in csv.reader(io.StringIO(complete)):
            if header is None:
                header = _check_header(record)
                continue
            if not any(cell.strip() for cell in record):
                continue
            yield _row(header, record, index)
            index += 1
    pending += decoder.decode(b"", final=True)
    for record in csv.reader(io.StringIO(pending)):
        if header is None:
            header = _check_header(record)
            continue
        if any(cell.strip() for cell in record):
            yield _row(header, record, index)
            index += 1
    if header is None:
        raise invalid("INVALID_ARGUMENT", "body", "the CSV is empty; send a header row first")


def _complete_records_end(text: str) -> int:
    """Position after the last newline that is outside quotes (0 if none)."""
    in_quotes = False
    end = 0
    for position, char in enumerate(text):
        if char == '"':
            in_quotes = not in_quotes
        elif char == "\n" and not in_quotes:
            end = position + 1
    return end


def _check_header(record: list[str]) -> list[str]:
    names = [cell.strip() for cell in record]
    for name in names:
        if name not in RECIPIENT_COLUMNS and not (
            name.startswith(DATA_PREFIX) and len(name) > len(DATA_PREFIX)
        ):
            raise invalid(
                "INVALID_ARGUMENT",
                "body",
                f"unknown CSV column {name!r}; use {', '.join(RECIPIENT_COLUMNS)} "
                "and data.<key> for variables",
            )
    return names


def _row(header: list[str], record: list[str], index: int) -> BulkRow:
    cells = dict(zip(header, record, strict=False))
    return BulkRow(
        index=index,
        email=cells.get("email", ""),
        phone=cells.get("phone", ""),
        slack_user_id=cells.get("slack_user_id", ""),
        data={k[len(DATA_PREFIX) :]: v for k, v in cells.items() if k.startswith(DATA_PREFIX)},
    )
