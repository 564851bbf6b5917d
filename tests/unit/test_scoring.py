"""Risk scoring (impact × probability × asset criticality) in exact Decimal arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openrisk.risks.scoring import (
    ASSET_FACTORS,
    MAX_SCORE,
    MIN_SCORE,
    Criticality,
    Severity,
    compute_score,
    global_risk_score,
    mitigation_priority,
    severity_for,
)

levels = st.integers(min_value=1, max_value=5)
criticalities = st.lists(st.sampled_from([c.value for c in Criticality]), max_size=12)


def test_spec_examples() -> None:
    assert compute_score(3, 4) == Decimal("12.00")
    assert severity_for(compute_score(3, 4)) is Severity.MEDIUM
    assert compute_score(2, 5, ["LOW", "HIGH"]) == Decimal("10.25")
    assert str(compute_score(2, 5, ["LOW", "HIGH"])) == "10.25"
    assert compute_score(1, 1, ["LOW"]) == MIN_SCORE
    assert compute_score(5, 5, ["CRITICAL", "CRITICAL"]) == MAX_SCORE


def test_rounding_is_half_up_and_exact() -> None:
    # 1 × (0.8 + 1.25) / 2 = 1.025 exactly → 1.03 (binary floats would give 1.02)
    assert compute_score(1, 1, ["LOW", "HIGH"]) == Decimal("1.03")
    # 1 × (0.8 + 1.0 + 1.25) / 3 = 1.01666… → 1.02
    assert compute_score(1, 1, ["LOW", "MEDIUM", "HIGH"]) == Decimal("1.02")


@pytest.mark.parametrize(
    ("score", "severity"),
    [
        (Decimal("37.5"), Severity.CRITICAL),
        (Decimal("20"), Severity.CRITICAL),
        (Decimal("19.99"), Severity.HIGH),
        (Decimal("15"), Severity.HIGH),
        (Decimal("14.99"), Severity.MEDIUM),
        (Decimal("10"), Severity.MEDIUM),
        (Decimal("9.99"), Severity.LOW),
        (Decimal("0.8"), Severity.LOW),
    ],
)
def test_severity_thresholds(score: Decimal, severity: Severity) -> None:
    assert severity_for(score) is severity
    assert severity_for(float(score)) is severity


def test_global_risk_score() -> None:
    assert global_risk_score(None) == 100
    assert global_risk_score(Decimal("12")) == 52
    assert global_risk_score(Decimal("12.3")) == 51  # floor(49.2) = 49
    assert global_risk_score(Decimal("25")) == 0
    assert global_risk_score(Decimal("37.5")) == 0


def test_mitigation_priority() -> None:
    assert mitigation_priority(Decimal("12"), 1, 1) == Decimal("6.00")
    assert mitigation_priority(Decimal("12"), 2, 3) == Decimal("2.40")
    assert mitigation_priority(Decimal("10.25"), 3, 4) == Decimal("1.46")  # 1.4642…


def test_bad_levels_are_refused() -> None:
    for impact, probability in ((0, 1), (6, 1), (1, 0), (1, 6)):
        with pytest.raises(ValueError, match="must be an integer from 1 to 5"):
            compute_score(impact, probability)
    with pytest.raises(ValueError, match="SEVERE"):
        compute_score(1, 1, ["SEVERE"])


@given(levels, levels, criticalities)
def test_score_is_in_range_with_two_decimals(i: int, p: int, crits: list[str]) -> None:
    score = compute_score(i, p, crits)
    assert MIN_SCORE <= score <= MAX_SCORE
    assert score == score.quantize(Decimal("0.01"))
    exact = Decimal(i * p) * (
        sum((ASSET_FACTORS[c] for c in crits), Decimal(0)) / len(crits) if crits else 1
    )
    # exact is itself a rounded Decimal quotient (a mean of three factors repeats)
    assert abs(score - exact) <= Decimal("0.005") + Decimal("1e-20")


@given(levels, levels, criticalities)
def test_score_grows_with_impact_and_probability(i: int, p: int, crits: list[str]) -> None:
    if i < 5:
        assert compute_score(i + 1, p, crits) > compute_score(i, p, crits)
    if p < 5:
        assert compute_score(i, p + 1, crits) > compute_score(i, p, crits)


@given(levels, levels, criticalities, st.sampled_from(list(Criticality)))
def test_raising_an_asset_never_lowers_the_score(
    i: int, p: int, crits: list[str], new: Criticality
) -> None:
    crits = [*crits, "LOW"]
    raised = [*crits[:-1], new.value]
    assert compute_score(i, p, raised) >= compute_score(i, p, crits)


@given(levels, levels, criticalities)
def test_order_of_assets_does_not_matter(i: int, p: int, crits: list[str]) -> None:
    assert compute_score(i, p, crits) == compute_score(i, p, list(reversed(crits)))


@given(st.decimals(min_value=Decimal("0.8"), max_value=Decimal("37.5"), places=2))
def test_global_score_is_between_0_and_100(mean: Decimal) -> None:
    assert 0 <= global_risk_score(mean) <= 100
