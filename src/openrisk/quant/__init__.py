"""Quantitative risk: FAIR-style Monte Carlo of annual loss for one risk and for the register.

The engine is pure numpy and knows nothing of the database: ``simulate_risk`` and
``simulate_portfolio`` take ``QuantifiedRisk`` inputs and a seed and return plain results.
"""

from openrisk.quant.distributions import (
    PERT_SHAPE,
    Z_90,
    CountDistribution,
    FixedRate,
    Lognormal,
    Pert,
)
from openrisk.quant.portfolio import (
    AppetiteVerdict,
    Contribution,
    LossAppetite,
    PortfolioResult,
    simulate_portfolio,
)
from openrisk.quant.results import (
    ControlResult,
    ExceedanceCurve,
    LossSummary,
    RiskResult,
    annual_losses,
    rosi,
    simulate_risk,
)
from openrisk.quant.simulation import Control, QuantifiedRisk

__all__ = [
    "PERT_SHAPE",
    "Z_90",
    "AppetiteVerdict",
    "Contribution",
    "Control",
    "ControlResult",
    "CountDistribution",
    "ExceedanceCurve",
    "FixedRate",
    "Lognormal",
    "LossAppetite",
    "LossSummary",
    "Pert",
    "PortfolioResult",
    "QuantifiedRisk",
    "RiskResult",
    "annual_losses",
    "rosi",
    "simulate_portfolio",
    "simulate_risk",
]
