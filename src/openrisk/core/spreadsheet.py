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
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

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
