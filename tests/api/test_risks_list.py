"""Listing the register: filters, sort, pagination, full-text search, matrix, query counts."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.api.test_risks_helpers import (
    RISKS,
    assert_problem,
    count_queries,
    new_asset,
    new_risk,
)
from tests.conftest import Account


async def _seed(client: httpx.AsyncClient, admin: Account) -> dict[str, dict[str, object]]:
    asset = await new_asset(client, admin, "HIGH")
    return {
        "ransom": await new_risk(
            client,
            admin,
            title="Ransomware encrypts the file servers",
            description="Phishing leads to ransomware on shared drives.",
            impact=5,
            probability=4,
            status="ACTIVE",
            tags=["malware", "pci"],
            frameworks=["ISO27001"],
        ),
        "phish": await new_risk(
            client,
            admin,
            title="Credential phishing of finance staff",
            description="Attackers could deploy ransomware afterwards.",
            impact=3,
            probability=4,
            status="ACTIVE",
            tags=["phishing"],
            frameworks=["NIST CSF", "ISO27001"],
            asset_ids=[asset["id"]],
        ),
        "vendor": await new_risk(
            client,
            admin,
            title="Vendor outage",
            description="Single supplier for payroll.",
            impact=2,
            probability=2,
            status="MITIGATED",
            tags=["vendor"],
        ),
        "asset": asset,
    }


async def _ids(client: httpx.AsyncClient, admin: Account, query: str) -> list[str]:
    response = await client.get(f"{RISKS}?{query}", headers=admin.headers)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["items"]]


async def test_filters(client: httpx.AsyncClient, admin: Account) -> None:
    data = await _seed(client, admin)
    ransom, phish, vendor = data["ransom"]["id"], data["phish"]["id"], data["vendor"]["id"]
    assert set(await _ids(client, admin, "status=ACTIVE")) == {ransom, phish}
    assert set(await _ids(client, admin, "status=ACTIVE&status=MITIGATED")) == {
        ransom,
        phish,
        vendor,
    }
    assert await _ids(client, admin, "severity=CRITICAL") == [ransom]
    assert set(await _ids(client, admin, "min_score=10&max_score=16")) == {phish}
    assert await _ids(client, admin, "tag=PCI") == [ransom]
    assert set(await _ids(client, admin, "framework=ISO27001")) == {ransom, phish}
    assert await _ids(client, admin, "framework=NIST%20CSF") == [phish]
    assert await _ids(client, admin, f"asset_id={data['asset']['id']}") == [phish]
    assert set(await _ids(client, admin, f"owner_id={admin.user_id}")) == {ransom, phish, vendor}
    assert set(await _ids(client, admin, "q=ransomware")) == {ransom, phish}
    assert await _ids(client, admin, "q=payroll") == [vendor]
    assert await _ids(client, admin, "q=%25%27%22") == []
    assert set(await _ids(client, admin, "unknown_param=1&cf_nothing=2")) == {ransom, phish, vendor}
    odd = await new_risk(client, admin, tags=["o'brien %s ?1 $1 \\x"], frameworks=["A'B"])
    assert await _ids(client, admin, "tag=o%27brien%20%25s%20%3F1%20%241%20%5Cx") == [odd["id"]]
    assert await _ids(client, admin, "framework=A%27B") == [odd["id"]]
    assert await _ids(client, admin, "tag=%27%3B%20drop%20table%20risks%3B--") == []
    await client.delete(f"{RISKS}/{odd['id']}", headers=admin.headers)
    for query, field in (
        ("status=OPEN", "status"),
        ("severity=HUGE", "severity"),
        ("min_score=abc", "min_score"),
        ("min_score=-1", "min_score"),
        ("owner_id=42", "owner_id"),
        ("page=0", "page"),
        ("page_size=101", "page_size"),
        ("sort=colour", "sort"),
        ("order=sideways", "order"),
    ):
        assert_problem(await client.get(f"{RISKS}?{query}", headers=admin.headers), 422, field)


async def test_sort_and_pagination(client: httpx.AsyncClient, admin: Account) -> None:
    data = await _seed(client, admin)
    ransom, phish, vendor = data["ransom"]["id"], data["phish"]["id"], data["vendor"]["id"]
    assert await _ids(client, admin, "sort=score&order=desc") == [ransom, phish, vendor]
    assert await _ids(client, admin, "sort=score&order=asc") == [vendor, phish, ransom]
    assert await _ids(client, admin, "sort=severity&order=desc") == [ransom, phish, vendor]
    assert await _ids(client, admin, "sort=title&order=asc") == [phish, ransom, vendor]
    assert await _ids(client, admin, "sort=impact&order=desc") == [ransom, phish, vendor]
    assert await _ids(client, admin, "sort=created_at&order=asc") == [ransom, phish, vendor]
    assert await _ids(client, admin, "sort=status&order=asc") == [phish, ransom, vendor]
    page1 = (await client.get(f"{RISKS}?sort=score&page_size=2", headers=admin.headers)).json()
    page2 = (
        await client.get(f"{RISKS}?sort=score&page_size=2&page=2", headers=admin.headers)
    ).json()
    assert (page1["total"], page1["page"], page1["page_size"]) == (3, 1, 2)
    assert [r["id"] for r in page1["items"] + page2["items"]] == [ransom, phish, vendor]
    assert page2["total"] == 3


async def test_ranked_search(client: httpx.AsyncClient, admin: Account) -> None:
    data = await _seed(client, admin)
    response = await client.get(f"{RISKS}/search?q=ransomware", headers=admin.headers)
    assert response.status_code == 200
    body = response.json()
    # the title match ranks above the description-only match
    assert [r["id"] for r in body["items"]] == [data["ransom"]["id"], data["phish"]["id"]]
    assert body["total"] == 2
    assert body["items"][0]["rank"] > body["items"][1]["rank"] > 0
    prefix = (await client.get(f"{RISKS}/search?q=ransom", headers=admin.headers)).json()
    assert prefix["total"] == 2
    both = (await client.get(f"{RISKS}/search?q=phishing+finance", headers=admin.headers)).json()
    assert [r["id"] for r in both["items"]] == [data["phish"]["id"]]
    odd = await client.get(f"{RISKS}/search?q=%22)(*%20OR%20--", headers=admin.headers)
    assert odd.status_code == 200
    assert_problem(await client.get(f"{RISKS}/search", headers=admin.headers), 422, "q")
    assert_problem(await client.get(f"{RISKS}/search?q=", headers=admin.headers), 422, "q")
    updated = await client.patch(
        f"{RISKS}/{data['vendor']['id']}",
        json={"title": "Ransomware at vendor"},
        headers=admin.headers,
    )
    assert updated.status_code == 200
    again = (await client.get(f"{RISKS}/search?q=ransomware", headers=admin.headers)).json()
    assert again["total"] == 3
    await client.delete(f"{RISKS}/{data['vendor']['id']}", headers=admin.headers)
    gone = (await client.get(f"{RISKS}/search?q=ransomware", headers=admin.headers)).json()
    assert gone["total"] == 2


async def test_matrix_has_all_25_cells(client: httpx.AsyncClient, admin: Account) -> None:
    await _seed(client, admin)
    for url in (f"{RISKS}/matrix", "/api/v1/dashboard/matrix"):
        body = (await client.get(url, headers=admin.headers)).json()
        assert len(body["cells"]) == 25
        assert body["total"] == 3
        counts = {(c["impact"], c["probability"]): c["count"] for c in body["cells"]}
        assert counts[(5, 4)] == counts[(3, 4)] == counts[(2, 2)] == 1
        assert sum(counts.values()) == 3
    filtered = (await client.get(f"{RISKS}/matrix?status=MITIGATED", headers=admin.headers)).json()
    assert filtered["total"] == 1


async def test_list_query_count_is_bounded(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    assets = [await new_asset(client, admin) for _ in range(5)]
    for i in range(12):
        risk = await new_risk(
            client, admin, asset_ids=[a["id"] for a in assets] if i % 2 else [], tags=["t"]
        )
        if i % 2:
            for n in range(5):
                created = await client.post(
                    f"{RISKS}/{risk['id']}/mitigations",
                    json={"title": f"m{n}", "sub_actions": [{"title": "a"}, {"title": "b"}]},
                    headers=admin.headers,
                )
                assert created.status_code == 201

    async def count(url: str) -> int:
        with count_queries(app) as statements:
            response = await client.get(url, headers=admin.headers)
        assert response.status_code == 200, response.text
        return len(statements)

    small = await count(f"{RISKS}?page_size=5")
    large = await count(f"{RISKS}?page_size=50")
    filtered = await count(f"{RISKS}?page_size=50&tag=t&sort=score&status=DRAFT")
    assert small == large == filtered
    assert 1 <= large <= 5  # membership, count, page, asset links (+ savepoints never)
    mitigations = await count("/api/v1/mitigations/recommended?page_size=50")
    assert mitigations <= 5
    assets_list = await count("/api/v1/assets?page_size=50")
    assert assets_list <= 5
