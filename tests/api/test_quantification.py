"""Quantified risks through the API: inputs validated field by field, results stored with the
digest of their inputs and simulated again when a mitigation changes, ROSI per mitigation,
the register's annual loss (bounded, reproducible, cached) and the loss appetite verdict."""

from __future__ import annotations

import math
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from openrisk.quantification.schemas import MAX_PORTFOLIO_ITERATIONS
from tests.api.test_risks_helpers import count_queries
from tests.conftest import Account

API = "/api/v1"
Z90 = 1.6448536269514722


def closed_form_ale(rate: float, low: float, high: float) -> float:
    """λ·exp(μ + σ²/2): Poisson events of a lognormal loss given by its 90 % interval."""
    mu = (math.log(low) + math.log(high)) / 2
    sigma = (math.log(high) - math.log(low)) / (2 * Z90)
    return rate * math.exp(mu + sigma**2 / 2)


def interval_body(rate: float, low: float, high: float) -> dict[str, Any]:
    return {
        "frequency": {"min": rate, "most_likely": rate, "max": rate},
        "loss": {"low": low, "high": high, "currency": "EUR"},
    }


async def new_risk(client: httpx.AsyncClient, admin: Account, title: str = "Ransomware") -> str:
    made = await client.post(
        f"{API}/risks",
        json={"title": f"{title} {uuid.uuid4().hex[:6]}", "impact": 4, "probability": 3},
        headers=admin.in_tenant(),
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def quantify(
    client: httpx.AsyncClient, admin: Account, risk_id: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.put(
        f"{API}/risks/{risk_id}/quantification", json=body, headers=admin.in_tenant()
    )


async def test_results_match_the_closed_forms_and_are_stored_with_their_digest(
    client: httpx.AsyncClient, admin: Account
) -> None:
    risk_id = await new_risk(client, admin)
    unquantified = await client.get(
        f"{API}/risks/{risk_id}/quantification", headers=admin.in_tenant()
    )
    assert unquantified.status_code == 200
    assert unquantified.json()["quantification"] is None
    assert unquantified.json()["results"] is None

    rate, low, high = 2.0, 10_000.0, 1_000_000.0
    answer = await quantify(client, admin, risk_id, interval_body(rate, low, high))
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    ale = closed_form_ale(rate, low, high)
    assert results["iterations"] == 100_000
    assert results["inherent"]["mean"] == pytest.approx(ale, rel=0.03)
    assert results["inherent"]["p_at_least_one"] == pytest.approx(1 - math.exp(-rate), abs=0.01)
    inherent = results["inherent"]
    assert inherent["median"] <= inherent["p90"] <= inherent["p95"] <= inherent["p99"]
    assert results["residual"] == results["inherent"]  # no mitigation yet
    curve = results["curve"]
    assert len(curve["thresholds"]) >= 50
    assert len(curve["inherent"]) == len(curve["residual"]) == len(curve["thresholds"])
    assert curve["inherent"] == sorted(curve["inherent"], reverse=True)

    again = await client.get(f"{API}/risks/{risk_id}/quantification", headers=admin.in_tenant())
    assert again.json()["results"] == results  # stored: same digest, same computation time
    assert again.json()["quantification"]["loss"] == {"low": low, "high": high, "currency": "EUR"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "frequency": {"min": 2, "most_likely": 1, "max": 3},
                "loss": {"low": 1, "high": 2},
            },
            "frequency.most_likely",
        ),
        (
            {
                "frequency": {"min": 1, "most_likely": 2, "max": 1.5},
                "loss": {"low": 1, "high": 2},
            },
            "frequency.max",
        ),
        (
            {"frequency": {"min": 0, "most_likely": 0, "max": 0}, "loss": {"low": 1, "high": 2}},
            "frequency.max",
        ),
        (
            {"frequency": {"min": 1, "most_likely": 2, "max": 1e6}, "loss": {"low": 1, "high": 2}},
            "frequency.max",
        ),
        (
            {"frequency": {"min": -1, "most_likely": 2, "max": 3}, "loss": {"low": 1, "high": 2}},
            "frequency.min",
        ),
        (
            {"frequency": {"min": 1, "most_likely": 2, "max": 3}, "loss": {"low": 5, "high": 5}},
            "loss.high",
        ),
        (
            {"frequency": {"min": 1, "most_likely": 2, "max": 3}, "loss": {"low": 0, "high": 5}},
            "loss.low",
        ),
        (
            {
                "frequency": {"min": 1, "most_likely": 2, "max": 3},
                "loss": {"low": 1, "high": 1e13},
            },
            "loss.high",
        ),
        (
            {"frequency": {"min": 1, "most_likely": 2, "max": 3}, "loss": {"low": 1}},
            "loss.high",
        ),
        (
            {
                "frequency": {"min": 1, "most_likely": 2, "max": 3},
                "loss": {"min": 10, "most_likely": 5, "max": 20},
            },
            "loss.most_likely",
        ),
        (
            {
                "frequency": {"min": 1, "most_likely": 2, "max": 3},
                "loss": {"low": 1, "high": 2, "max": 3},
            },
            "loss",
        ),
        (
            {
                "frequency": {"min": 1, "most_likely": 2, "max": 3},
                "loss": {"low": 1, "high": 2, "currency": "euro"},
            },
            "loss.currency",
        ),
    ],
)
async def test_bad_inputs_are_422_naming_the_field_and_never_stored(
    client: httpx.AsyncClient, admin: Account, body: dict[str, Any], field: str
) -> None:
    risk_id = await new_risk(client, admin)
    answer = await quantify(client, admin, risk_id, body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in answer.json()["errors"]]
    stored = await client.get(f"{API}/risks/{risk_id}/quantification", headers=admin.in_tenant())
    assert stored.json()["quantification"] is None


async def test_mitigations_make_results_stale_and_give_their_rosi(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    risk_id = await new_risk(client, admin)
    pert_loss = {
        "frequency": {"min": 1, "most_likely": 3, "max": 6},
        "loss": {"min": 20_000, "most_likely": 50_000, "max": 200_000, "currency": "USD"},
    }
    first = (await quantify(client, admin, risk_id, pert_loss)).json()["results"]
    bad = await client.post(
        f"{API}/risks/{risk_id}/mitigations",
        json={"title": "Backups", "frequency_reduction": 1.5},
        headers=h,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "frequency_reduction"
    made = await client.post(
        f"{API}/risks/{risk_id}/mitigations",
        json={
            "title": "Offline backups",
            "frequency_reduction": 0.5,
            "loss_reduction": 0.2,
            "annual_cost": 10_000,
        },
        headers=h,
    )
    assert made.status_code == 201, made.text
    mitigation = made.json()
    assert (mitigation["frequency_reduction"], mitigation["loss_reduction"]) == (0.5, 0.2)
    assert mitigation["annual_cost"] == 10_000

    second = (await client.get(f"{API}/risks/{risk_id}/quantification", headers=h)).json()
    results = second["results"]
    assert results["digest"] != first["digest"]  # simulated again: the mitigation is new
    assert results["inherent"] == first["inherent"]  # same seed, same inherent years
    # half the events, each 20 % smaller: 40 % of the loss remains
    assert results["residual"]["mean"] == pytest.approx(0.4 * first["inherent"]["mean"], rel=0.03)
    [control] = results["controls"]
    assert control["mitigation_id"] == mitigation["id"] and control["title"] == "Offline backups"
    expected_rosi = (control["ale_before"] - control["ale_after"] - 10_000) / 10_000
    assert control["rosi"] == pytest.approx(expected_rosi, rel=1e-12)
    assert control["ale_after"] < control["ale_before"]

    patched = await client.patch(
        f"{API}/mitigations/{mitigation['id']}", json={"annual_cost": 0}, headers=h
    )
    assert patched.status_code == 200, patched.text
    free = (await client.get(f"{API}/risks/{risk_id}/quantification", headers=h)).json()
    assert free["results"]["controls"][0]["rosi"] is None  # undefined for a free control
    await client.patch(
        f"{API}/mitigations/{mitigation['id']}", json={"status": "CANCELLED"}, headers=h
    )
    cancelled = (await client.get(f"{API}/risks/{risk_id}/quantification", headers=h)).json()
    assert cancelled["results"]["controls"] == []
    assert cancelled["results"]["residual"] == first["residual"]
    assert cancelled["results"]["digest"] == first["digest"]

    deleted = await client.delete(f"{API}/risks/{risk_id}/quantification", headers=h)
    assert deleted.status_code == 204
    gone = (await client.get(f"{API}/risks/{risk_id}/quantification", headers=h)).json()
    assert gone["quantification"] is None
    again = await client.delete(f"{API}/risks/{risk_id}/quantification", headers=h)
    assert again.status_code == 404


async def test_the_register_sums_its_risks_and_judges_the_appetite(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    url = f"{API}/dashboard/quantitative"
    empty = await client.get(url, params={"iterations": 20_000}, headers=h)
    assert empty.status_code == 200, empty.text
    assert empty.json()["risk_count"] == 0 and empty.json()["residual"] is None

    small, large = await new_risk(client, admin, "Phishing"), await new_risk(client, admin, "Fire")
    ales = {}
    for risk_id, body in (
        (small, interval_body(4, 1_000, 50_000)),
        (large, interval_body(0.2, 100_000, 5_000_000)),
    ):
        answer = await quantify(client, admin, risk_id, body)
        ales[risk_id] = answer.json()["results"]["inherent"]["mean"]
    params = {"iterations": 50_000, "seed": 7}
    first = await client.get(url, params=params, headers=h)
    assert first.status_code == 200, first.text
    register = first.json()
    assert register["risk_count"] == 2 and register["currencies"] == ["EUR"]
    assert register["iterations"] == 50_000 and register["seed"] == 7
    # The closed form, not the risks' own (unseeded) estimates: the larger risk's loss is heavy
    # tailed, and 50,000 iterations estimate its mean within about 2 % (one standard error).
    expected = closed_form_ale(4, 1_000, 50_000) + closed_form_ale(0.2, 100_000, 5_000_000)
    assert register["residual"]["mean"] == pytest.approx(expected, rel=0.1)
    assert register["var_p95"] == register["residual"]["p95"]
    assert register["var_p99"] >= register["var_p95"]
    assert len(register["curve"]["thresholds"]) >= 50
    contributors = register["contributors"]
    assert {c["risk_id"] for c in contributors} == {small, large}
    assert contributors[0]["ale_residual"] >= contributors[1]["ale_residual"]
    assert sum(c["share"] for c in contributors) == pytest.approx(1.0)
    assert register["appetite"] is None

    cached = await client.get(url, params=params, headers=h)
    assert cached.json() == register and cached.headers.get("x-cache") == "HIT"
    other_seed = await client.get(url, params={**params, "seed": 8}, headers=h)
    assert other_seed.json()["residual"]["mean"] != register["residual"]["mean"]
    correlated = await client.get(url, params={**params, "correlation": 0.5}, headers=h)
    assert correlated.json()["correlation"] == 0.5

    too_many = await client.get(url, params={"iterations": MAX_PORTFOLIO_ITERATIONS + 1}, headers=h)
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "iterations"

    appetite = {"threshold": 1_000_000, "max_probability": 0.05, "currency": "EUR"}
    bad = await client.put(
        f"{API}/quantitative/appetite", json={**appetite, "max_probability": 1.5}, headers=h
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "max_probability"
    assert (await client.get(f"{API}/quantitative/appetite", headers=h)).json() == {
        "loss_appetite": None
    }
    stored = await client.put(f"{API}/quantitative/appetite", json=appetite, headers=h)
    assert stored.status_code == 200, stored.text
    assert stored.json()["loss_appetite"]["threshold"] == 1_000_000
    judged = (await client.get(url, params=params, headers=h)).json()
    verdict = judged["appetite"]
    assert verdict["threshold"] == 1_000_000 and verdict["max_probability"] == 0.05
    assert verdict["verdict"] == ("within" if verdict["probability_residual"] <= 0.05 else "above")
    assert judged["digest"] != register["digest"]

    strict = await client.put(
        f"{API}/quantitative/appetite",
        json={"threshold": 1_000, "max_probability": 0.01},
        headers=h,
    )
    assert strict.status_code == 200
    above = (await client.get(url, params=params, headers=h)).json()["appetite"]
    assert above["verdict"] == "above" and above["probability_residual"] > 0.01

    await client.delete(f"{API}/risks/{large}", headers=h)
    after = (await client.get(url, params=params, headers=h)).json()
    assert after["risk_count"] == 1
    assert [c["risk_id"] for c in after["contributors"]] == [small]
    removed = await client.delete(f"{API}/quantitative/appetite", headers=h)
    assert removed.status_code == 204
    assert (await client.get(url, params=params, headers=h)).json()["appetite"] is None


async def test_the_registers_queries_do_not_grow_with_its_risks(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()

    async def add(n: int) -> None:
        for _ in range(n):
            risk_id = await new_risk(client, admin)
            await quantify(client, admin, risk_id, interval_body(1, 1_000, 10_000))
            made = await client.post(
                f"{API}/risks/{risk_id}/mitigations",
                json={"title": "Patch", "frequency_reduction": 0.3, "annual_cost": 100},
                headers=h,
            )
            assert made.status_code == 201

    counts = []
    for n, seed in ((2, 101), (4, 102)):
        await add(n)
        with count_queries(app) as statements:
            answer = await client.get(
                f"{API}/dashboard/quantitative",
                params={"iterations": 2_000, "seed": seed},
                headers=h,
            )
        assert answer.status_code == 200 and answer.headers["x-cache"] == "MISS"
        counts.append(len(statements))
    assert counts[0] == counts[1]


async def test_the_risk_answer_carries_its_last_simulation(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    risk_id = await new_risk(client, admin)
    plain = await new_risk(client, admin, title="Not estimated")
    before = (await client.get(f"{API}/risks/{risk_id}", headers=h)).json()  # cached
    assert before["quantification"] is None
    await quantify(client, admin, risk_id, interval_body(2, 1_000, 100_000))
    results = (await client.get(f"{API}/risks/{risk_id}/quantification", headers=h)).json()
    summary = (await client.get(f"{API}/risks/{risk_id}", headers=h)).json()["quantification"]
    assert summary == {
        "ale_inherent": results["results"]["inherent"]["mean"],
        "ale_residual": results["results"]["residual"]["mean"],
        "currency": "EUR",
        "computed_at": results["results"]["computed_at"],
    }
    listed = (await client.get(f"{API}/risks", headers=h)).json()["items"]
    by_id = {r["id"]: r["quantification"] for r in listed}
    assert by_id == {risk_id: summary, plain: None}
    await client.delete(f"{API}/risks/{risk_id}/quantification", headers=h)
    assert (await client.get(f"{API}/risks/{risk_id}", headers=h)).json()["quantification"] is None


async def stored_row(app: FastAPI, risk_id: str) -> tuple[str | None, Any]:
    """The stored digest and computation time, as the database has them."""
    from sqlalchemy import select

    from openrisk.quantification.models import RiskQuantification

    async with app.state.db.session() as session:
        row = (
            await session.execute(
                select(RiskQuantification.result_digest, RiskQuantification.computed_at).where(
                    RiskQuantification.risk_id == uuid.UUID(risk_id)
                )
            )
        ).one()
    return row.result_digest, row.computed_at


async def test_mitigation_changes_recompute_the_summary_in_the_background(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    """Nobody reads the risk's quantification: the job engine simulates it again after each
    change of its mitigations, and the (cached) risk answer shows the new summary."""
    h = admin.in_tenant()
    risk_id = await new_risk(client, admin)
    first = (await quantify(client, admin, risk_id, interval_body(2, 1_000, 100_000))).json()
    inherent = first["results"]["inherent"]["mean"]
    before = (await client.get(f"{API}/risks/{risk_id}", headers=h)).json()["quantification"]
    assert before["ale_residual"] == inherent  # no mitigation yet; the answer is now cached

    made = await client.post(
        f"{API}/risks/{risk_id}/mitigations",
        json={"title": "Filter", "frequency_reduction": 0.5, "loss_reduction": 0.2},
        headers=h,
    )
    assert made.status_code == 201, made.text
    await app.state.jobs.drain()
    mitigated = (await client.get(f"{API}/risks/{risk_id}", headers=h)).json()["quantification"]
    assert mitigated["ale_inherent"] == inherent  # same seed, same inherent years
    assert mitigated["ale_residual"] == pytest.approx(0.4 * inherent, rel=0.03)
    assert mitigated["computed_at"] > before["computed_at"]
    digest, _ = await stored_row(app, risk_id)
    assert digest != first["results"]["digest"]

    patched = await client.patch(
        f"{API}/mitigations/{made.json()['id']}", json={"loss_reduction": 0.0}, headers=h
    )
    assert patched.status_code == 200, patched.text
    await app.state.jobs.drain()
    cheaper = (await client.get(f"{API}/risks/{risk_id}", headers=h)).json()["quantification"]
    assert cheaper["ale_residual"] == pytest.approx(0.5 * inherent, rel=0.03)
    listed = (await client.get(f"{API}/risks", headers=h)).json()["items"]
    assert {r["id"]: r["quantification"] for r in listed}[risk_id] == cheaper

    # the read finds the stored result current: nothing is simulated again
    read = (await client.get(f"{API}/risks/{risk_id}/quantification", headers=h)).json()
    assert read["results"]["residual"]["mean"] == cheaper["ale_residual"]
    assert read["results"]["computed_at"] == cheaper["computed_at"]

    deleted = await client.delete(f"{API}/mitigations/{made.json()['id']}", headers=h)
    assert deleted.status_code == 204, deleted.text
    await app.state.jobs.drain()
    bare = (await client.get(f"{API}/risks/{risk_id}", headers=h)).json()["quantification"]
    assert bare["ale_residual"] == inherent
    assert (await stored_row(app, risk_id))[0] == first["results"]["digest"]


async def test_a_recompute_with_nothing_changed_simulates_nothing(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    """The job is idempotent: inputs whose digest is stored are not simulated again (a
    mitigation's title, or a deleted and restored risk, changes none of them)."""
    from openrisk.core.uow import UnitOfWork
    from openrisk.quantification.service import recompute_results

    h = admin.in_tenant()
    risk_id = await new_risk(client, admin)
    await quantify(client, admin, risk_id, interval_body(1, 1_000, 10_000))
    made = await client.post(
        f"{API}/risks/{risk_id}/mitigations",
        json={"title": "Patch", "frequency_reduction": 0.3, "annual_cost": 100},
        headers=h,
    )
    assert made.status_code == 201, made.text
    await app.state.jobs.drain()
    stored = await stored_row(app, risk_id)

    await client.patch(
        f"{API}/mitigations/{made.json()['id']}", json={"title": "Patch all"}, headers=h
    )
    assert (await client.delete(f"{API}/risks/{risk_id}", headers=h)).status_code == 204
    restored = await client.post(f"{API}/risks/{risk_id}/restore", headers=h)
    assert restored.status_code == 200, restored.text
    await app.state.jobs.drain()
    assert await stored_row(app, risk_id) == stored  # same digest, same computation time

    async with app.state.db.session() as session:
        again = await recompute_results(
            uow=UnitOfWork(session),
            tenant_id=uuid.UUID(admin.tenant_id),
            risk_ids=[uuid.UUID(risk_id)],
        )
    assert again == []
    assert await stored_row(app, risk_id) == stored


async def test_only_quantified_risks_get_a_recompute_job(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    from openrisk.core.events import DomainEvent
    from openrisk.quantification.tasks import RECOMPUTE_TASK, recomputes_for

    quantified, plain = await new_risk(client, admin), await new_risk(client, admin)
    await quantify(client, admin, quantified, interval_body(1, 1_000, 10_000))
    tenant = uuid.UUID(admin.tenant_id)

    def mitigation_event(risk_id: str, kind: str = "updated") -> DomainEvent:
        data = {"id": str(uuid.uuid4()), "risk_id": risk_id}
        return DomainEvent(type=f"mitigation.{kind}", tenant_id=tenant, resource_id=None, data=data)

    events = [
        mitigation_event(quantified),
        mitigation_event(plain),
        mitigation_event(quantified, "deleted"),
        DomainEvent(type="risk.restored", tenant_id=tenant, resource_id=uuid.UUID(quantified)),
        DomainEvent(
            type="risk.restored", tenant_id=uuid.uuid4(), resource_id=uuid.UUID(quantified)
        ),
    ]
    async with app.state.db.session() as session:
        specs = await recomputes_for(session, events)
    assert [s.event_id for s in specs] == [events[0].id, events[2].id, events[3].id]
    assert {s.task for s in specs} == {RECOMPUTE_TASK}
    assert all(s.args == {"tenant_id": str(tenant), "risk_ids": [quantified]} for s in specs)


async def test_a_read_that_simulates_again_makes_the_risk_answer_follow(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the background job (its route taken away), the read of a stale quantification
    simulates and stores it, and the cached risk answer shows the new summary at once."""
    from openrisk import tasks as registry

    monkeypatch.setattr(registry, "EVENT_ROUTES", [])
    h = admin.in_tenant()
    risk_id = await new_risk(client, admin)
    await quantify(client, admin, risk_id, interval_body(2, 1_000, 100_000))
    before = (await client.get(f"{API}/risks/{risk_id}", headers=h)).json()["quantification"]
    made = await client.post(
        f"{API}/risks/{risk_id}/mitigations",
        json={"title": "Filter", "frequency_reduction": 0.5},
        headers=h,
    )
    assert made.status_code == 201, made.text
    await app.state.jobs.drain()
    stale = (await client.get(f"{API}/risks/{risk_id}", headers=h)).json()["quantification"]
    assert stale == before  # nothing simulated it yet
    read = (await client.get(f"{API}/risks/{risk_id}/quantification", headers=h)).json()
    residual = read["results"]["residual"]["mean"]
    assert residual == pytest.approx(0.5 * before["ale_inherent"], rel=0.03)
    after = (await client.get(f"{API}/risks/{risk_id}", headers=h)).json()["quantification"]
    assert after["ale_residual"] == residual
    assert after["computed_at"] == read["results"]["computed_at"]
