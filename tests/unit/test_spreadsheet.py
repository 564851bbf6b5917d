"""The formula-safe cell writer: nothing it writes starts a formula, and import undoes it."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from openrisk.core.spreadsheet import FORMULA_START, csv_line, neutralise, unquote

formula_like = st.builds(
    lambda start, rest: start + rest, st.sampled_from(FORMULA_START), st.text()
)
quoted_formula = st.builds(lambda text: "'" + text, formula_like)


@given(st.one_of(st.text(), formula_like, quoted_formula))
def test_no_neutralised_cell_starts_a_formula_and_import_restores_it(text: str) -> None:
    cell = neutralise(text)
    assert not cell.startswith(FORMULA_START)
    # the one ambiguity: text that already looked neutralised loses its quote on import
    assume(not (text.startswith("'") and text[1:].startswith(FORMULA_START)))
    assert unquote(cell) == text


def test_non_text_cells_are_left_alone() -> None:
    assert neutralise(-5) == -5
    assert csv_line([None, -1.5, "=1+1"]) == ",-1.5,'=1+1\r\n"
