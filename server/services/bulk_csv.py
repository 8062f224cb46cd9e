"""Reads an uploaded CSV of recipients as it streams in, one row at a time,
never holding the whole file.

Linear in the upload's size however it is chunked: each character is scanned
for quotes once, and the quote state carries over to the next chunk, so a
record split across many chunks is never rescanned from its start."""

import codecs
import csv
from collections.abc import AsyncIterator, Iterator

from server.domain.body_limits import MAX_UPLOAD_BYTES
from server.domain.errors import ClarionError, invalid
from server.domain.sending import BulkRow

RECIPIENT_COLUMNS = ("email", "phone", "slack_user_id")
DATA_PREFIX = "data."
# Longest record (one row, quoted line breaks included), in characters. A row
# holds a recipient and a few variables; past this it is a mistake or an
# attack, and waiting for its end would hold it all in memory.
MAX_RECORD_CHARS = 1024 * 1024

# The csv module's own limit is 128 KiB per field; a record is bounded above.
csv.field_size_limit(MAX_RECORD_CHARS)


class RecordSplitter:
    """Cuts decoded text into runs of complete records (each ending with a
    line break outside quotes), keeping what is left over for the next feed."""

    def __init__(self) -> None:
        self._pending: list[str] = []
        self._pending_chars = 0
        self._in_quotes = False

    def feed(self, text: str) -> str:
        """Complete records up to the last record end in `text`, with any
        pending start; "" if `text` ends none."""
        cut = self._last_record_end(text)
        if cut < 0:
            self._keep(text)
            return ""
        complete = "".join([*self._pending, text[:cut]])
        self._pending.clear()
        self._pending_chars = 0
        self._keep(text[cut:])
        return complete

    def rest(self) -> str:
        """What is left at the end of the upload: a last record without a line break."""
        rest = "".join(self._pending)
        self._pending.clear()
        self._pending_chars = 0
        return rest

    def _keep(self, text: str) -> None:
        if not text:
            return
        self._pending.append(text)
        self._pending_chars += len(text)
        if self._pending_chars > MAX_RECORD_CHARS:
            raise record_too_large()

    def _last_record_end(self, text: str) -> int:
        """Position after the last line break outside quotes (-1 if none), and
        the quote state at the end of `text` recorded. Splitting on quotes
        alternates outside and inside runs (an escaped "" is an empty inside
        run), so only str methods touch each character."""
        runs = text.split('"')
        # Run i is outside quotes when its parity matches the first outside run's.
        first_outside = 1 if self._in_quotes else 0
        self._in_quotes ^= len(runs) % 2 == 0
        end = len(text)
        for i in range(len(runs) - 1, -1, -1):
            run = runs[i]
            start = end - len(run)
            if i % 2 == first_outside:
                newline = run.rfind("\n")
                if newline >= 0:
                    return start + newline + 1
            end = start - 1  # the quote before this run
        return -1


def record_too_large() -> ClarionError:
    return invalid(
        "CSV_RECORD_TOO_LARGE",
        "body",
        f"a CSV record is longer than {MAX_RECORD_CHARS} characters "
        f"({MAX_RECORD_CHARS // 2**20} MiB); "
        "check for an unclosed quote, or split the row",
    )


async def capped(
    chunks: AsyncIterator[bytes], limit: int = MAX_UPLOAD_BYTES
) -> AsyncIterator[bytes]:
    """`chunks`, refused once more than `limit` bytes have arrived."""
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise invalid(
                "UPLOAD_TOO_LARGE",
                "body",
                f"the upload is larger than {limit} bytes ({limit // 2**20} MiB); "
                "split it into several uploads",
            )
        yield chunk


class CsvReader:
    """Turns runs of complete records into rows: the header first, then one
    BulkRow per non-blank record, indexed from 0."""

    def __init__(self) -> None:
        self.header: list[str] | None = None
        self._index = 0
        self._consumed = 0

    def rows(self, complete: str) -> Iterator[BulkRow]:
        reader = csv.reader(self._lines(complete))
        try:
            record_start = self._consumed
            for record in reader:
                # The reader pulls exactly one record's lines before yielding it.
                if self._consumed - record_start > MAX_RECORD_CHARS:
                    raise record_too_large()
                record_start = self._consumed
                if self.header is None:
                    self.header = _check_header(record)
                    continue
                if not any(cell.strip() for cell in record):
                    continue
                yield _row(self.header, record, self._index)
                self._index += 1
        except csv.Error as exc:
            if "field limit" in str(exc):
                # A field longer than a whole record may be.
                raise record_too_large() from None
            raise invalid(
                "INVALID_ARGUMENT",
                "body",
                f"the CSV is malformed after data row {self._index}: {exc}",
            ) from None

    def _lines(self, text: str) -> Iterator[str]:
        start = 0
        while start < len(text):
            end = text.find("\n", start) + 1 or len(text)
            self._consumed += end - start
            yield text[start:end]
            start = end


async def csv_rows(chunks: AsyncIterator[bytes]) -> AsyncIterator[BulkRow]:
    """Rows of a UTF-8 CSV whose header names recipient columns and data.<key>
    columns. A quoted field may span lines and chunks."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
    splitter = RecordSplitter()
    reader = CsvReader()
    async for chunk in chunks:
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError:
            raise invalid("INVALID_ARGUMENT", "body", "the CSV is not UTF-8 text") from None
        for row in reader.rows(splitter.feed(text)):
            yield row
    for row in reader.rows(splitter.feed(decoder.decode(b"", final=True)) + splitter.rest()):
        yield row
    if reader.header is None:
        raise invalid("INVALID_ARGUMENT", "body", "the CSV is empty; send a header row first")


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
