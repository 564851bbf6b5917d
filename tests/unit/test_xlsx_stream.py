"""The streamed XLSX writer: a valid workbook, bytes before the last row, hostile cells safe."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from openrisk.core.spreadsheet import XlsxStream, neutralise


def _read(data: bytes) -> list[tuple[object, ...]]:
    workbook = load_workbook(io.BytesIO(data), read_only=True)
    assert workbook.sheetnames == ["Risks"]
    return list(workbook.worksheets[0].iter_rows(values_only=True))


def test_bytes_come_out_before_the_rows_are_done() -> None:
    book = XlsxStream("Risks")
    chunks = [book.take()]
    assert len(chunks[0]) > 1_000  # the package's fixed parts, before any row
    biggest_pending = 0
    for start in range(0, 30_000, 1_000):
        book.append_rows([[n, f"title {n}", n / 7] for n in range(start, start + 1_000)])
        chunk = book.take()
        biggest_pending = max(biggest_pending, len(chunk))
        chunks.append(chunk)
    chunks.append(book.close())
    assert sum(1 for c in chunks[1:-1] if c) > 10  # streamed, not held until the end
    assert biggest_pending < 1_000_000
    rows = _read(b"".join(chunks))
    assert len(rows) == 30_000
    assert rows[12_345] == (12_345, "title 12345", 12_345 / 7)


def test_cells_keep_their_type_and_text_never_becomes_a_formula() -> None:
    book = XlsxStream("Risks")
    values = ["=1+1", "+cmd", "-2", "@SUM(A1)", "\t=x", "a<b>&'\"", "\x00\x07bell", "  pad  ", ""]
    book.append_rows([values, [1, 2.5, True, False, None, "x"]])
    rows = _read(book.take() + book.close())
    expected = [neutralise(v.replace("\x00", "\ufffd").replace("\x07", "\ufffd")) for v in values]
    assert list(rows[0]) == expected
    assert rows[1] == (1, 2.5, True, False, None, "x")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(codec="utf-8"), max_size=40), min_size=1, max_size=6))
def test_any_text_round_trips_neutralised(texts: list[str]) -> None:
    book = XlsxStream("Risks")
    book.append_rows([texts])
    [row] = _read(book.take() + book.close())
    for written, read in zip(texts, row, strict=True):
        expected = neutralise("".join("\ufffd" if _illegal(c) else c for c in written))
        assert (read or "") == expected


def _illegal(char: str) -> bool:
    code = ord(char)
    return (
        (code < 0x20 and char not in "\t\n\r")
        or 0xD800 <= code <= 0xDFFF
        or code in (0xFFFE, 0xFFFF)
    )
