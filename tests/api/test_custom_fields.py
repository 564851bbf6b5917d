"""Custom fields: typed definitions, validation of risks' values, filters, export."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from openrisk.rbac.catalogue import ANALYST
from tests.api.test_risks_helpers import RISKS, assert_problem, member, new_risk
from tests.conftest import Account, register

FIELDS = "/api/v1/custom-fields"


async def _define(client: httpx.AsyncClient, admin: Account, **body: object) -> dict[str, object]:
    response = await client.post(FIELDS, json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _fields(client: httpx.AsyncClient, admin: Account) -> None:
    await _define(
        client,
        admin,
        name="business_unit",
        label="Business unit",
        type="choice",
        options=["Retail", "Corporate"],
    )
    await _define(client, admin, name="loss_eur", label="Expected loss (EUR)", type="number")
    await _define(client, admin, name="regulated", label="Regulated", type="boolean")
    await _define(client, admin, name="next_audit", label="Next audit", type="date")
    await _define(client, admin, name="ticket", label="Ticket", type="text")


async def test_definitions_crud_and_validation(client: httpx.AsyncClient, admin: Account) -> None:
    field = await _define(
        client, admin, name="region", label="Region", type="choice", options=["EU", "US"]
    )
    assert field["options"] == ["EU", "US"]
    duplicate = await client.post(
        FIELDS, json={"name": "region", "label": "R", "type": "text"}, headers=admin.headers
    )
    assert_problem(duplicate, 409)
    for body, name in (
        ({"name": "Bad Name", "label": "x", "type": "text"}, "name"),
        ({"name": "x", "label": "x", "type": "colour"}, "type"),
        ({"name": "x", "label": "x", "type": "choice"}, "body"),
        ({"name": "x", "label": "x", "type": "text", "options": ["a"]}, "body"),
        ({"name": "x", "label": "", "type": "text"}, "label"),
    ):
        assert_problem(await client.post(FIELDS, json=body, headers=admin.headers), 422, name)
    url = f"{FIELDS}/{field['id']}"
    patched = await client.patch(url, json={"options": ["EU", "US", "APAC"]}, headers=admin.headers)
    assert patched.json()["options"] == ["EU", "US", "APAC"]
    assert_problem(
        await client.patch(url, json={"type": "text"}, headers=admin.headers), 422, "type"
    )
    assert_problem(
        await client.patch(url, json={"options": []}, headers=admin.headers), 422, "options"
    )
    listed = (await client.get(FIELDS, headers=admin.headers)).json()
    assert [f["name"] for f in listed["items"]] == ["region"]
    outsider = await register(client, tenant_name="Other fields")
    assert_problem(await client.patch(url, json={"label": "x"}, headers=outsider.headers), 404)
    assert (await client.get(FIELDS, headers=outsider.headers)).json()["total"] == 0


async def test_values_are_typed_and_validated(client: httpx.AsyncClient, admin: Account) -> None:
    await _fields(client, admin)
    risk = await new_risk(
        client,
        admin,
        custom_fields={
            "business_unit": "Retail",
            "loss_eur": "25000",
            "regulated": True,
            "next_audit": "2030-01-15",
            "ticket": "SEC-12",
        },
    )
    assert risk["custom_fields"] == {
        "business_unit": "Retail",
        "loss_eur": 25000,
        "regulated": True,
        "next_audit": "2030-01-15",
        "ticket": "SEC-12",
    }
    for values, field in (
        ({"business_unit": "Wholesale"}, "custom_fields.business_unit"),
        ({"loss_eur": "lots"}, "custom_fields.loss_eur"),
        ({"regulated": "maybe"}, "custom_fields.regulated"),
        ({"next_audit": "31/12/2030"}, "custom_fields.next_audit"),
        ({"unknown": 1}, "custom_fields.unknown"),
    ):
        response = await client.post(
            RISKS,
            json={"title": "x", "impact": 1, "probability": 1, "custom_fields": values},
            headers=admin.headers,
        )
        assert_problem(response, 422, field)
    # PATCH merges; null removes a value
    url = f"{RISKS}/{risk['id']}"
    patched = await client.patch(
        url, json={"custom_fields": {"loss_eur": 1.5, "ticket": None}}, headers=admin.headers
    )
    assert patched.status_code == 200, patched.text
    values = patched.json()["custom_fields"]
    assert values["loss_eur"] == 1.5
    assert "ticket" not in values
    assert values["business_unit"] == "Retail"


async def test_required_fields(client: httpx.AsyncClient, admin: Account) -> None:
    await _define(client, admin, name="bu", label="BU", type="text", required=True)
    response = await client.post(
        RISKS, json={"title": "x", "impact": 1, "probability": 1}, headers=admin.headers
    )
    assert_problem(response, 422, "custom_fields.bu")
    await new_risk(client, admin, custom_fields={"bu": "Retail"})


async def test_filter_by_custom_field(client: httpx.AsyncClient, admin: Account) -> None:
    await _fields(client, admin)
    retail = await new_risk(
        client, admin, custom_fields={"business_unit": "Retail", "loss_eur": 100, "regulated": True}
    )
    corporate = await new_risk(
        client, admin, custom_fields={"business_unit": "Corporate", "loss_eur": 100.5}
    )
    await new_risk(client, admin)

    async def ids(query: str) -> set[str]:
        response = await client.get(f"{RISKS}?{query}", headers=admin.headers)
        assert response.status_code == 200, response.text
        return {r["id"] for r in response.json()["items"]}

    assert await ids("cf_business_unit=Retail") == {retail["id"]}
    assert await ids("cf_loss_eur=100") == {retail["id"]}
    assert await ids("cf_loss_eur=100.0") == {retail["id"]}
    assert await ids("cf_loss_eur=100.5") == {corporate["id"]}
    assert await ids("cf_regulated=true") == {retail["id"]}
    assert await ids("cf_regulated=true&cf_business_unit=Corporate") == set()
    assert len(await ids("cf_not_a_field=1")) == 3
    assert_problem(
        await client.get(f"{RISKS}?cf_loss_eur=abc", headers=admin.headers), 422, "cf_loss_eur"
    )
    assert_problem(
        await client.get(f"{RISKS}?cf_business_unit=Nope", headers=admin.headers),
        422,
        "cf_business_unit",
    )


async def test_delete_definition_strips_values(client: httpx.AsyncClient, admin: Account) -> None:
    field = await _define(client, admin, name="ticket", label="Ticket", type="text")
    risk = await new_risk(client, admin, custom_fields={"ticket": "SEC-1"})
    assert (
        await client.delete(f"{FIELDS}/{field['id']}", headers=admin.headers)
    ).status_code == 204
    after = (await client.get(f"{RISKS}/{risk['id']}", headers=admin.headers)).json()
    assert after["custom_fields"] == {}


async def test_only_managers_manage_fields(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    analyst = await member(app, client, admin, ANALYST)
    assert (await client.get(FIELDS, headers=analyst.in_tenant())).status_code == 200
    response = await client.post(
        FIELDS, json={"name": "x", "label": "x", "type": "text"}, headers=analyst.in_tenant()
    )
    assert_problem(response, 403)
