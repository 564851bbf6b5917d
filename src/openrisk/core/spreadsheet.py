"""The one writer of every CSV and XLSX file the product produces, safe against formula injection.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (also after a leading tab
or carriage return) as a formula, so a risk title, an e-mail address or a User-Agent written raw
could fetch URLs or start programs on the machine of whoever opens the export (OWASP, "CSV
Injection"). Every text cell that starts so is prefixed with a single quote, and XLSX text is
always written as a string cell, never as a formula. Importers strip that quote again
(``unquote``). Characters that XLSX cannot hold (C0 controls) become U+FFFD instead of failing
the export half-way.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any, Protocol
from xml.sax.saxutils import escape as xml_escape

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def neutralise(value: Any) -> Any:
    """``value`` as it may be written to a cell: text that would start a formula is quoted."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def unquote(text: str) -> str:
    """Undo :func:`neutralise` on a cell read back from one of our exports."""
    if text.startswith("'") and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text


class CsvWriter:
    """``csv.writer`` whose every cell goes through :func:`neutralise` (``None`` is empty)."""

    def __init__(self, out: _Writable) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow(["" if v is None else neutralise(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_line(row: Iterable[Any]) -> str:
    """One neutralised CSV line (for exports streamed line by line)."""
    buffer = _LineBuffer()
    CsvWriter(buffer).writerow(row)
    return buffer.text


class _LineBuffer:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text


def xlsx_row(sheet: Any, values: Sequence[Any], *, font: Any = None) -> list[Any]:
    """Cells for ``sheet.append``: text neutralised and typed as a string, never a formula."""
    from openpyxl.cell import WriteOnlyCell

    cells = []
    for value in values:
        text = isinstance(value, str)
        if text:
            value = neutralise(_XLSX_ILLEGAL.sub("\ufffd", value))
        cell = WriteOnlyCell(sheet, value=value)
        if text:
            cell.data_type = "s"
        if font is not None:
            cell.font = font
        cells.append(cell)
    return cells


class XlsxStream:
    """A one-sheet XLSX workbook written as a stream: compressed bytes come out while rows go
    in, so a download starts at once and memory stays flat whatever the number of rows.

    openpyxl builds the package (content types, relationships, workbook, styles, theme) but
    writes a workbook only as a whole, at the end; here its empty workbook is the template and
    only the sheet's rows are written, into a ZIP entry streamed with data descriptors
    (``zipfile`` on a non-seekable target). Every cell goes through :func:`neutralise`; text
    is always an inline string cell, never a formula, and numbers are numbers.
    """

    SHEET = "xl/worksheets/sheet1.xml"

    def __init__(self, title: str) -> None:
        self._out = _Chunks()
        self._zip = zipfile.ZipFile(self._out, "w", compression=zipfile.ZIP_DEFLATED)
        parts, sheet_head, self._sheet_tail = _template(title)
        for name, data in parts:
            self._zip.writestr(name, data)
        entry = zipfile.ZipInfo(self.SHEET, _ZIP_TIME)
        entry.compress_type = zipfile.ZIP_DEFLATED
        self._sheet = self._zip.open(entry, "w")
        self._sheet.write(sheet_head)
        self._rows = 0

    def append_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        parts: list[str] = []
        for values in rows:
            self._rows += 1
            parts.append(f'<row r="{self._rows}">')
            parts.extend(_xlsx_cell(v) for v in values)
            parts.append("</row>")
        self._sheet.write("".join(parts).encode("utf-8"))

    def take(self) -> bytes:
        """The bytes written since the last call (may be empty)."""
        return self._out.take()

    def close(self) -> bytes:
        """Finish the sheet and the archive; the last bytes."""
        self._sheet.write(self._sheet_tail)
        self._sheet.close()
        self._zip.close()
        return self._out.take()


_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# what XML 1.0 cannot carry at all: C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF
_CR = {"\r": "&#13;"}  # a raw CR would be read back as LF
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SHEET_DATA = b"<sheetData>"


class _Chunks:
    """A write-only file for zipfile: what it writes waits here until taken."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


@functools.lru_cache(maxsize=8)
def _template(title: str) -> tuple[tuple[tuple[str, bytes], ...], bytes, bytes]:
    """openpyxl's empty workbook with one sheet named ``title``: (its other parts, the sheet's
    XML before its rows, the sheet's XML after them)."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    workbook.create_sheet(title)
    buffer = io.BytesIO()
    workbook.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        parts = tuple(
            (name, archive.read(name)) for name in archive.namelist() if name != XlsxStream.SHEET
        )
        sheet = archive.read(XlsxStream.SHEET)
    start = sheet.index(_SHEET_DATA) + len(_SHEET_DATA)
    end = sheet.index(b"</sheetData>")
    return parts, sheet[:start], sheet[end:]


def _xlsx_cell(value: Any) -> str:
    if value is None:
        return "<c/>"
    if isinstance(value, bool):
        return f'<c t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float):
        return f"<c><v>{value!r}</v></c>"
    text = neutralise(_XML_ILLEGAL.sub("\ufffd", str(value)))
    space = ' xml:space="preserve"' if text != text.strip() else ""
    return f'<c t="inlineStr"><is><t{space}>{xml_escape(text, _CR)}</t></is></c>'
