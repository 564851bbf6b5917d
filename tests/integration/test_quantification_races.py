"""Quantification under parallel writers and readers, against a real two-worker server on
SQLite and PostgreSQL: a risk's first estimate written by twelve requests at once is stored
once (no 500), and its stored result is always of its stored inputs; twelve readers of a
result made stale by a mitigation all get the new result; the loss appetite likewise."""

from __future__ import annotations

import math
import uuid

import pytest

from tests.integration.live import (
    API,
    all_at_once,
    assert_no_server_error,
    client,
    sign_up,
    statuses,
)
from tests.integration.server_process import Server

PARALLEL = 12

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def server(race_server: Server) -> Server:
    return race_server


def estimate(rate: float) -> dict[str, object]:
    return {
        "frequency": {"min": rate, "most_likely": rate, "max": rate},
        "loss": {"low": 1_000, "high": 100_000},
    }


async def test_parallel_estimates_and_stale_reads(server: Server) -> None:
    async with client(server.base_url) as http:
        owner = await sign_up(http)
        h = owner.headers()
        made = await http.post(
            f"{API}/risks",
            json={"title": f"Race {uuid.uuid4().hex[:6]}", "impact": 3, "probability": 3},
            headers=h,
        )
        risk_id = made.json()["id"]
        url = f"{API}/risks/{risk_id}/quantification"
        rates = [0.1 * (i + 1) for i in range(PARALLEL)]
        answers = await all_at_once([http.put(url, json=estimate(r), headers=h) for r in rates])
        assert_no_server_error(answers)
        assert statuses(answers) == {200: PARALLEL}

        stored = (await http.get(url, headers=h)).json()
        rate = stored["quantification"]["frequency"]["most_likely"]
        assert rate in rates
        p_event = stored["results"]["inherent"]["p_at_least_one"]
        assert p_event == pytest.approx(1 - math.exp(-rate), abs=0.01)  # of the stored inputs

        await http.post(
            f"{API}/risks/{risk_id}/mitigations",
            json={"title": "Filter", "frequency_reduction": 0.5, "annual_cost": 1_000},
            headers=h,
        )
        reads = await all_at_once([http.get(url, headers=h) for _ in range(PARALLEL)])
        assert_no_server_error(reads)
        assert statuses(reads) == {200: PARALLEL}
        digests = {r.json()["results"]["digest"] for r in reads}
        assert len(digests) == 1 and digests != {stored["results"]["digest"]}
        assert all(len(r.json()["results"]["controls"]) == 1 for r in reads)

        appetite = f"{API}/quantitative/appetite"
        puts = await all_at_once(
            [
                http.put(
                    appetite,
                    json={"threshold": 1_000 * (i + 1), "max_probability": 0.05},
                    headers=h,
                )
                for i in range(PARALLEL)
            ]
        )
        assert_no_server_error(puts)
        assert statuses(puts) == {200: PARALLEL}
        final = (await http.get(appetite, headers=h)).json()["loss_appetite"]
        assert final["threshold"] in {1_000.0 * (i + 1) for i in range(PARALLEL)}
