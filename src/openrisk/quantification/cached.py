"""The register's annual loss through the response cache, keyed by the digest of its inputs:
the API route and the web page share one entry per (iterations, seed, correlation, digest)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from openrisk.core.cache.invalidation import QUANTITATIVE_VIEWS
from openrisk.core.cache.keys import params_digest
from openrisk.core.cache.response import CachedAnswer, Lookup, ResponseCache
from openrisk.quantification import service
from openrisk.quantification.schemas import PortfolioOut

NAMESPACE = "dashboard:quantitative"


def params(inputs: service.PortfolioInputs) -> dict[str, object]:
    """What shapes the answer (``cached_json`` builds the same key from these)."""
    return {
        "iterations": inputs.iterations,
        "seed": inputs.seed,
        "correlation": inputs.correlation,
        "digest": inputs.digest,
    }


def lookup(tenant_id: uuid.UUID, inputs: service.PortfolioInputs) -> Lookup:
    return Lookup.build(
        tenant_id=str(tenant_id),
        namespace=NAMESPACE,
        key_parts=("all", params_digest(params(inputs), {})),
        depends_on=QUANTITATIVE_VIEWS,
    )


def computer(inputs: service.PortfolioInputs) -> Callable[[], Awaitable[bytes]]:
    async def compute() -> bytes:
        result = await service.portfolio(inputs)
        return result.__pydantic_serializer__.to_json(result)

    return compute


async def portfolio(
    cache: ResponseCache, *, tenant_id: uuid.UUID, inputs: service.PortfolioInputs
) -> tuple[PortfolioOut, CachedAnswer]:
    answer = await cache.answer(lookup(tenant_id, inputs), computer(inputs))
    return PortfolioOut.model_validate_json(answer.body), answer
