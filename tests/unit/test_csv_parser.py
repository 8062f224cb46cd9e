"""The streaming CSV reader: the same rows however the upload is chunked,
quoted line breaks across chunk boundaries, and its size limits."""

import csv
import io
import random
from collections.abc import AsyncIterator

import pytest

from server.domain.errors import ClarionError
from server.services.bulk_csv import MAX_RECORD_CHARS, capped, csv_rows

CSV = (
    "email,phone,data.note\r\n"
    'ann@example.com,+14155550100,"line one\nline two, with ""quotes"""\r\n'
    "\r\n"
    'bob@example.com,,"🎉 \n\n multi"\n'
    "cy@example.com,+14155550101,plain\n"
    'dee@example.com,,"ends without a line break"'
).encode()


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _read(data: bytes, size: int) -> list[tuple[int, str, str, dict[str, object]]]:
    return [(r.index, r.email, r.phone, r.data) async for r in csv_rows(_chunks(data, size))]


def _expected() -> list[tuple[int, str, str, dict[str, object]]]:
    records = [r for r in csv.reader(io.StringIO(CSV.decode(), newline="")) if r][1:]
    return [(i, r[0], r[1], {"note": r[2]}) for i, r in enumerate(records)]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, len(CSV)])
async def test_every_chunking_gives_the_rows_the_csv_module_reads(size: int) -> None:
    rows = await _read(CSV, size)
    assert rows == _expected()
    assert rows[0][3] == {"note": 'line one\nline two, with "quotes"'}
    assert rows[1][3] == {"note": "🎉 \n\n multi"}


async def test_random_cuts_through_quotes_and_multibyte_characters() -> None:
    generator = random.Random(15)
    for _ in range(200):
        cuts = sorted(generator.sample(range(1, len(CSV)), 6))

        async def pieces(cuts: list[int] = cuts) -> AsyncIterator[bytes]:
            for start, end in zip([0, *cuts], [*cuts, len(CSV)], strict=True):
                yield CSV[start:end]

        assert [(r.index, r.email, r.phone, r.data) async for r in csv_rows(pieces())] == (
            _expected()
        )


async def test_a_record_over_the_limit_split_across_chunks_is_refused() -> None:
    data = b'email,data.note\na@example.com,"' + b"x" * (MAX_RECORD_CHARS + 10) + b'"\n'
    with pytest.raises(ClarionError) as refused:
        await _read(data, 4096)
    assert refused.value.reason == "CSV_RECORD_TOO_LARGE"
    assert str(MAX_RECORD_CHARS) in refused.value.message


async def test_a_record_over_the_limit_in_one_chunk_is_refused() -> None:
    # Many fields, each under the limit, in one record arriving whole.
    cells = ",".join(["y" * 1000] * (MAX_RECORD_CHARS // 1000 + 2))
    data = f"email,data.a\na@example.com,{cells}\n".encode()
    with pytest.raises(ClarionError) as refused:
        await _read(data, len(data))
    assert refused.value.reason == "CSV_RECORD_TOO_LARGE"


async def test_records_at_the_limit_are_read() -> None:
    note = "z" * (MAX_RECORD_CHARS - 40)
    data = f'email,data.note\na@example.com,"{note}"\nb@example.com,short\n'.encode()
    rows = await _read(data, 4096)
    assert [r[1] for r in rows] == ["a@example.com", "b@example.com"]
    assert rows[0][3] == {"note": note}


async def test_the_byte_cap_counts_chunked_bodies() -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"e" * 100

    received = 0
    with pytest.raises(ClarionError) as refused:
        async for chunk in capped(body(), limit=550):
            received += len(chunk)
    assert refused.value.reason == "UPLOAD_TOO_LARGE"
    assert "550 bytes" in refused.value.message
    assert received == 500
