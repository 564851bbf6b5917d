"""The register's annual loss as a declared cached read, keyed by the digest of its inputs:
the API route and the web page share one entry per (iterations, seed, correlation, digest).

The inputs are read from the database on every request (three queries, cheap); the simulation
they feed is what the cache saves. Their digest covers every estimate, control and the
appetite, so a key never names an answer of other inputs.
"""

from __future__ import annotations

import uuid

from openrisk.core.cache.http import dump
from openrisk.core.cache.invalidation import QUANTITATIVE_VIEWS
from openrisk.core.cache.reads import cached_read
from openrisk.quantification import service
from openrisk.quantification.schemas import PortfolioOut


async def simulated(*, tenant_id: uuid.UUID, inputs: service.PortfolioInputs) -> PortfolioOut:
    return await service.portfolio(inputs)


PORTFOLIO = cached_read(
    simulated,
    namespace="dashboard:quantitative",
    ttl=300,
    varies_on=("tenant", "inputs"),  # inputs by their cache_key(): the digest and the options
    uses=(),
    depends_on=QUANTITATIVE_VIEWS,
    encode=dump,
    decode=PortfolioOut.model_validate_json,
)
