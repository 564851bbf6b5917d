"""The tenant's risk model: the default is the fixed 5×5 model, a change re-scores every risk
in SQL (history rows, roll-ups, caches), a dry run previews exactly what applying does,
shrinking an axis needs a mapping, and a stale version is a 409."""

from __future__ import annotations

import copy
import itertools
import uuid
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI

from openrisk.methodology.store import default_definition, to_scoring
from openrisk.risks import rollups
from openrisk.risks.scoring import DEFAULT_MODEL, compute_score, severity_for
from tests.api.test_dashboard import _rollup_rows
from tests.api.test_risks_helpers import member, new_risk
from tests.conftest import Account

MODEL = "/api/v1/risk-model"
RISKS = "/api/v1/risks"


async def current(client: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    response = await client.get(MODEL, headers=admin.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def body_of(model: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {k: v for k, v in copy.deepcopy(model).items() if k != "updated_at"}
    body.update(changes)
    return body


async def put(
    client: httpx.AsyncClient, admin: Account, body: dict[str, Any], *, dry_run: bool = False
) -> httpx.Response:
    params = {"dry_run": "true"} if dry_run else {}
    return await client.put(MODEL, json=body, params=params, headers=admin.in_tenant())


def levels(*names: str) -> list[dict[str, Any]]:
    return [{"value": i, "name": n, "description": ""} for i, n in enumerate(names, 1)]


async def test_the_default_model_is_the_fixed_five_by_five(
    client: httpx.AsyncClient, admin: Account
) -> None:
    model = await current(client, admin)
    assert model["version"] == 1
    assert [lv["value"] for lv in model["impact_levels"]] == [1, 2, 3, 4, 5]
    assert [lv["value"] for lv in model["probability_levels"]] == [1, 2, 3, 4, 5]
    assert [(b["name"], b["min_score"]) for b in model["bands"]] == [
        ("LOW", 0.0),
        ("MEDIUM", 10.0),
        ("HIGH", 15.0),
        ("CRITICAL", 20.0),
    ]
    assert model["asset_factors"] == {"LOW": 0.8, "MEDIUM": 1.0, "HIGH": 1.25, "CRITICAL": 1.5}
    assert model["review_days"] == {"CRITICAL": 30, "HIGH": 90, "MEDIUM": 180, "LOW": 365}
    assert model["acceptance"] == {"max_days": 365, "approver_min_level": 6}
    # the default model scores every combination exactly as the fixed scoring did
    scoring = to_scoring(default_definition())
    crits = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
    for i, p in itertools.product(range(1, 6), repeat=2):
        for linked in ((), *itertools.combinations_with_replacement(crits, 2)):
            score = compute_score(i, p, linked)
            assert scoring.score(i, p, linked) == score == DEFAULT_MODEL.score(i, p, linked)
            assert scoring.severity(score) == severity_for(score).value


async def test_saving_the_same_model_changes_no_risk(
    client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin, impact=4, probability=4)
    response = await put(client, admin, body_of(await current(client, admin)))
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert response.json()["remapping"]["rescored"] == 0
    after = (await client.get(f"{RISKS}/{risk['id']}", headers=admin.headers)).json()
    assert after["version"] == risk["version"] and after["severity"] == "HIGH"
    assert (await current(client, admin))["version"] == 2


async def test_new_bands_rescore_in_sql_with_history_caches_and_rollups(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    low = await new_risk(client, admin, impact=2, probability=2)  # 4
    mid = await new_risk(client, admin, impact=3, probability=4)  # 12 MEDIUM
    high = await new_risk(client, admin, impact=4, probability=4)  # 16 HIGH
    await client.get(f"{RISKS}/{mid['id']}", headers=admin.headers)  # cached
    model = await current(client, admin)
    bands = [
        {"name": "MINOR", "min_score": 0, "color": "#00ff00"},
        {"name": "SERIOUS", "min_score": 8, "color": "#ffaa00"},
        {"name": "SEVERE", "min_score": 16, "color": "#ff0000"},
    ]
    body = body_of(model, bands=bands, review_days={"SEVERE": 14})
    preview = await put(client, admin, body, dry_run=True)
    assert preview.status_code == 200, preview.text
    assert preview.json()["dry_run"] is True and preview.json()["version"] == 1
    figures = preview.json()["remapping"]
    assert figures["risks"] == 3 and figures["severity_changed"] == 3
    assert {b["name"]: (b["before"], b["after"]) for b in figures["by_band"]} == {
        "MINOR": (0, 1),
        "SERIOUS": (0, 1),
        "SEVERE": (0, 1),
        "LOW": (1, 0),
        "MEDIUM": (1, 0),
        "HIGH": (1, 0),
        "CRITICAL": (0, 0),
    }
    assert (await current(client, admin))["version"] == 1  # nothing written

    applied = await put(client, admin, body)
    assert applied.status_code == 200, applied.text
    assert applied.json()["remapping"] == figures  # the preview is what applying did
    assert applied.json()["review_days"] == {"MINOR": 365, "SERIOUS": 365, "SEVERE": 14}
    seen = {}
    for risk in (low, mid, high):
        got = (await client.get(f"{RISKS}/{risk['id']}", headers=admin.headers)).json()
        seen[risk["id"]] = got["severity"]
        assert got["version"] == risk["version"] + 1
        history = (await client.get(f"{RISKS}/{risk['id']}/history", headers=admin.headers)).json()
        latest = history["items"][0]
        assert latest["action"] == "SCORE_CHANGE"
        assert latest["changes"]["severity"]["after"] == got["severity"]
        assert "risk model version 2" in latest["changes"]["reason"]
    assert seen == {low["id"]: "MINOR", mid["id"]: "SERIOUS", high["id"]: "SEVERE"}
    listed = await client.get(RISKS, params={"severity": "SERIOUS"}, headers=admin.headers)
    assert [r["id"] for r in listed.json()["items"]] == [mid["id"]]
    stats = (await client.get("/api/v1/dashboard/stats", headers=admin.headers)).json()
    assert stats["by_severity"]["SEVERE"] == 1 and stats["by_severity"]["HIGH"] == 0

    tenant = uuid.UUID(admin.tenant_id)
    incremental = await _rollup_rows(app, tenant)
    async with app.state.db.session() as session:
        await rollups.rebuild(session, tenant_ids=[tenant])
        await session.commit()
    assert incremental == await _rollup_rows(app, tenant)
    audit = await client.get(
        "/api/v1/audit-events", params={"action": "risk_model.update"}, headers=admin.headers
    )
    assert audit.json()["items"][0]["changes"]["version"] == {"before": 1, "after": 2}
    # a new risk is scored with the tenant's bands
    created = await new_risk(client, admin, impact=3, probability=3)
    assert created["severity"] == "SERIOUS"


async def test_sql_rescoring_equals_the_python_scoring_with_new_factors(
    client: httpx.AsyncClient, admin: Account
) -> None:
    assets = {}
    for crit in ("LOW", "MEDIUM", "HIGH", "CRITICAL"):
        response = await client.post(
            "/api/v1/assets",
            json={
                "name": f"A {crit} {uuid.uuid4().hex[:6]}",
                "type": "server",
                "criticality": crit,
            },
            headers=admin.headers,
        )
        assets[crit] = response.json()["id"]
    combos = [
        (3, 5, ["LOW", "HIGH"]),
        (2, 5, ["LOW", "HIGH", "CRITICAL"]),
        (5, 5, ["CRITICAL"]),
        (1, 3, ["MEDIUM", "LOW", "LOW"]),
        (4, 3, []),
        (5, 4, ["HIGH", "CRITICAL", "MEDIUM"]),
    ]
    created = []
    for i, p, crits in combos:
        risk = await new_risk(
            client, admin, impact=i, probability=p, asset_ids=[assets[c] for c in set(crits)]
        )
        created.append((risk, sorted(set(crits))))
    model = await current(client, admin)
    factors = {"LOW": 0.55, "MEDIUM": 1.05, "HIGH": 1.33, "CRITICAL": 2.07}
    body = body_of(model, asset_factors=factors, appetite_score=20)
    response = await put(client, admin, body)
    assert response.status_code == 200, response.text
    scoring = to_scoring(response.json())
    for risk, crits in created:
        got = (await client.get(f"{RISKS}/{risk['id']}", headers=admin.headers)).json()
        expected = scoring.score(risk["impact"], risk["probability"], crits)
        assert Decimal(str(got["score"])) == expected, (risk["impact"], risk["probability"], crits)
        assert got["severity"] == scoring.severity(expected)


async def test_a_four_by_three_model_end_to_end(client: httpx.AsyncClient, admin: Account) -> None:
    kept = await new_risk(client, admin, impact=2, probability=3)
    top = await new_risk(client, admin, impact=5, probability=5)
    edge = await new_risk(client, admin, impact=4, probability=4)
    model = await current(client, admin)
    body = body_of(
        model,
        impact_levels=levels("Low", "Medium", "High", "Very high"),
        probability_levels=levels("Unlikely", "Possible", "Likely"),
        bands=[
            {"name": "LOW", "min_score": 0, "color": "#00aa00"},
            {"name": "MEDIUM", "min_score": 4, "color": "#ffaa00"},
            {"name": "HIGH", "min_score": 8, "color": "#ff5500"},
            {"name": "CRITICAL", "min_score": 12, "color": "#aa0000"},
        ],
    )
    refused = await put(client, admin, body)
    assert refused.status_code == 422, refused.text
    problems = {e["field"]: e["message"] for e in refused.json()["errors"]}
    assert set(problems) == {"level_mapping.impact", "level_mapping.probability"}
    assert "5" in problems["level_mapping.impact"]
    assert "4, 5" in problems["level_mapping.probability"]
    assert refused.headers["content-type"] == "application/problem+json"

    body["level_mapping"] = {"impact": {"5": 4}, "probability": {"4": 3, "5": 3}}
    preview = (await put(client, admin, body, dry_run=True)).json()["remapping"]
    applied = await put(client, admin, body)
    assert applied.status_code == 200, applied.text
    assert applied.json()["remapping"] == preview
    assert preview["rescored"] == 3  # kept: same levels, new band
    got = {
        r["id"]: (r["impact"], r["probability"], r["score"], r["severity"])
        for r in (await client.get(RISKS, headers=admin.headers)).json()["items"]
    }
    assert got[kept["id"]] == (2, 3, 6.0, "MEDIUM")
    assert got[top["id"]] == (4, 3, 12.0, "CRITICAL")
    assert got[edge["id"]] == (4, 3, 12.0, "CRITICAL")
    history = (await client.get(f"{RISKS}/{top['id']}/history", headers=admin.headers)).json()
    changes = history["items"][0]["changes"]
    assert changes["impact"] == {"before": 5, "after": 4}
    assert changes["probability"] == {"before": 5, "after": 3}

    too_high = await client.post(
        RISKS, json={"title": "x", "impact": 4, "probability": 4}, headers=admin.headers
    )
    assert too_high.status_code == 422
    assert too_high.json()["errors"][0]["field"] == "probability"
    ok = await client.post(
        RISKS, json={"title": "x", "impact": 4, "probability": 3}, headers=admin.headers
    )
    assert ok.status_code == 201 and ok.json()["severity"] == "CRITICAL"
    patched = await client.patch(f"{RISKS}/{kept['id']}", json={"impact": 5}, headers=admin.headers)
    assert patched.status_code == 422 and patched.json()["errors"][0]["field"] == "impact"
    bulk = await client.post(
        f"{RISKS}/bulk",
        json={"action": "update", "ids": [kept["id"]], "changes": {"probability": 5}},
        headers=admin.headers,
    )
    assert bulk.status_code == 422 and bulk.json()["errors"][0]["field"] == "changes.probability"

    # growing back needs no mapping; the levels stay where they are
    grown = body_of((await current(client, admin)), impact_levels=model["impact_levels"])
    assert (await put(client, admin, grown)).status_code == 200
    assert (await client.get(f"{RISKS}/{top['id']}", headers=admin.headers)).json()["impact"] == 4


async def test_bad_models_are_refused_naming_the_field(
    client: httpx.AsyncClient, admin: Account
) -> None:
    model = await current(client, admin)
    cases = {
        "impact_levels": body_of(model, impact_levels=levels("a", "b")),
        "probability_levels": body_of(
            model, probability_levels=[{"value": v, "name": str(v)} for v in (1, 3, 2)]
        ),
        "bands.0.min_score": body_of(
            model, bands=[{"name": "LOW", "min_score": 1}, {"name": "HIGH", "min_score": 5}]
        ),
        "bands.1.min_score": body_of(
            model, bands=[{"name": "LOW", "min_score": 0}, {"name": "HIGH", "min_score": 0}]
        ),
        "bands.0.name": body_of(model, bands=[{"name": "low!", "min_score": 0}]),
        "review_days": body_of(model, review_days={"NOPE": 10}),
        "asset_factors.HIGH": body_of(model, asset_factors={"HIGH": 0}),
        "version": body_of(model, version=None),
    }
    for field, body in cases.items():
        response = await put(client, admin, body)
        assert response.status_code == 422, (field, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (field, response.text)
    assert (await current(client, admin))["version"] == 1


async def test_a_stale_version_is_a_conflict_and_readers_may_not_write(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    from openrisk.rbac.catalogue import MANAGER

    model = await current(client, admin)
    assert (await put(client, admin, body_of(model))).status_code == 200
    stale = await put(client, admin, body_of(model, appetite_score=3))
    assert stale.status_code == 409, stale.text
    assert "version 2" in stale.json()["detail"]
    manager = await member(app, client, admin, MANAGER)
    assert (await client.get(MODEL, headers=manager.in_tenant())).status_code == 200
    fresh = body_of(await current(client, admin))
    assert (await put(client, manager, fresh)).status_code == 403


async def test_the_loss_appetite_lives_on_the_risk_model(
    client: httpx.AsyncClient, admin: Account
) -> None:
    """``PUT /quantitative/appetite`` and ``loss_appetite`` of the model are one setting, and
    the register's annual loss is judged against it."""
    from tests.api.test_quantification import interval_body, quantify
    from tests.api.test_quantification import new_risk as quantified_risk

    assert "loss_appetite" not in await current(client, admin)
    appetite = {"threshold": 1_000_000.0, "max_probability": 0.05, "currency": "EUR"}
    stored = await client.put(
        "/api/v1/quantitative/appetite", json=appetite, headers=admin.in_tenant()
    )
    assert stored.status_code == 200, stored.text
    model = await current(client, admin)
    assert model["loss_appetite"] == appetite
    saved = await put(client, admin, body_of(model))  # sent back as read: unchanged
    assert saved.status_code == 200 and saved.json()["loss_appetite"] == appetite

    stricter = {**appetite, "threshold": 1_000.0}
    body = body_of(await current(client, admin), loss_appetite=stricter)
    preview = await put(client, admin, body, dry_run=True)
    assert preview.status_code == 200, preview.text
    assert preview.json()["loss_appetite"] == stricter
    assert (await current(client, admin))["loss_appetite"] == appetite  # a dry run
    risk_id = await quantified_risk(client, admin)
    await quantify(client, admin, risk_id, interval_body(2, 10_000, 500_000))
    applied = await put(
        client, admin, body_of(await current(client, admin), loss_appetite=stricter)
    )
    assert applied.status_code == 200, applied.text
    alias = await client.get("/api/v1/quantitative/appetite", headers=admin.in_tenant())
    assert alias.json()["loss_appetite"]["threshold"] == 1_000.0
    register = await client.get(
        "/api/v1/dashboard/quantitative", params={"iterations": 2000}, headers=admin.in_tenant()
    )
    assert register.json()["appetite"]["threshold"] == 1_000.0
    assert register.json()["appetite"]["verdict"] == "above"
    removed = await put(client, admin, body_of(await current(client, admin), loss_appetite=None))
    assert removed.status_code == 200 and "loss_appetite" not in removed.json()
    gone = await client.get("/api/v1/quantitative/appetite", headers=admin.in_tenant())
    assert gone.json() == {"loss_appetite": None}
