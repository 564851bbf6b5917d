"""Invariants with exactly one winner under parallel writers, against a real two-worker server.

Each race sends at least ten requests at once and is repeated over several trials, on SQLite and
on PostgreSQL: the last Admin, refresh-token rotation, one account per email, one tenant per
slug, one acceptance per invitation. Losers get a clean 4xx (409 where the state conflicts),
never a 500. The outcome of every trial is printed (``pytest -s``) for the record.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from openrisk.rbac.catalogue import ADMIN, VIEWER
from tests.conftest import TEST_PASSWORD
from tests.integration.live import (
    API,
    User,
    all_at_once,
    assert_no_server_error,
    client,
    sign_up,
    statuses,
)
from tests.integration.server_process import Server

TRIALS = 4
PARALLEL = 12

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def server(race_server: Server) -> Server:
    return race_server


def record(name: str, trial: int, outcome: object) -> None:
    print(f"[race] {name} trial {trial}: {outcome}")


async def _admins(http: httpx.AsyncClient, survivor: User, tenant_id: str) -> list[str]:
    members = await http.get(f"{API}/members", headers=survivor.headers(tenant_id))
    assert members.status_code == 200, members.text
    return [m["user_id"] for m in members.json()["items"] if m["role_id"] == str(ADMIN.id)]


async def _two_admins(http: httpx.AsyncClient) -> tuple[User, User]:
    first, second = await sign_up(http), await sign_up(http)
    added = await http.post(
        f"{API}/members",
        json={"email": second.email, "role_id": str(ADMIN.id)},
        headers=first.headers(),
    )
    assert added.status_code == 201, added.text
    return first, second


def _change(
    http: httpx.AsyncClient, kind: str, actor: User, target: User, index: int
) -> httpx.Request:
    """``actor`` demotes or removes ``target`` in ``actor``'s first tenant."""
    url = f"{API}/members/{target.user_id}"
    headers = actor.headers(target.tenant_id)
    if kind == "remove" or (kind == "mixed" and index % 2 == 0):
        return http.build_request("DELETE", url, headers=headers)
    return http.build_request("PATCH", url, json={"role_id": str(VIEWER.id)}, headers=headers)


@pytest.mark.parametrize("kind", ["demote", "remove", "mixed"])
async def test_two_admins_removing_each_other_leave_one_admin(server: Server, kind: str) -> None:
    async with client(server.base_url) as http:
        for trial in range(TRIALS):
            a, b = await _two_admins(http)
            b.tenant_id = a.tenant_id
            requests = [
                _change(http, kind, a, b, i) if i % 2 == 0 else _change(http, kind, b, a, i)
                for i in range(PARALLEL)
            ]
            responses = await all_at_once([http.send(r) for r in requests])
            assert_no_server_error(responses)
            assert set(statuses(responses)) <= {200, 204, 403, 404, 409}, statuses(responses)
            admins = await _any_admins(http, a, b, a.tenant_id)
            record(f"admins/{kind}", trial, dict(statuses(responses)))
            assert len([u for u in (a, b) if u.user_id in admins]) == 1, f"Admins left: {admins}"


async def _any_admins(http: httpx.AsyncClient, a: User, b: User, tenant: str) -> list[str]:
    for user in (a, b):
        response = await http.get(f"{API}/members", headers=user.headers(tenant))
        if response.status_code == 200:
            return await _admins(http, user, tenant)
    return []


async def test_parallel_refreshes_with_one_token_have_one_winner_and_revoke_the_family(
    server: Server,
) -> None:
    async with client(server.base_url) as http:
        for trial in range(TRIALS):
            user = await sign_up(http)
            body = {"refresh_token": user.refresh_token}
            responses = await all_at_once(
                [http.post(f"{API}/auth/refresh", json=body) for _ in range(PARALLEL)]
            )
            outcome = statuses(responses)
            record("refresh", trial, dict(outcome))
            assert outcome[200] == 1 and outcome[200] + outcome[401] + outcome[409] == PARALLEL
            [winner] = [r.json() for r in responses if r.status_code == 200]
            # the reuse revoked the family: the winner's new tokens are dead as well
            again = await http.post(
                f"{API}/auth/refresh", json={"refresh_token": winner["refresh_token"]}
            )
            assert again.status_code == 401
            me = await http.get(
                f"{API}/auth/me", headers={"Authorization": f"Bearer {winner['access_token']}"}
            )
            assert me.status_code == 401


async def test_parallel_registrations_of_one_email_create_one_account(server: Server) -> None:
    async with client(server.base_url) as http:
        for trial in range(TRIALS):
            email = f"twin-{uuid.uuid4().hex[:10]}@example.com"
            body = {"email": email, "password": TEST_PASSWORD, "tenant_name": "Twins"}
            responses = await all_at_once(
                [http.post(f"{API}/auth/register", json=body) for _ in range(PARALLEL)]
            )
            outcome = statuses(responses)
            record("register", trial, dict(outcome))
            assert outcome == {201: 1, 409: PARALLEL - 1}, outcome
            login = await http.post(
                f"{API}/auth/login", json={"email": email, "password": TEST_PASSWORD}
            )
            assert login.status_code == 200


async def test_parallel_tenants_with_one_slug_create_one_tenant(server: Server) -> None:
    async with client(server.base_url) as http:
        owner = await sign_up(http)
        auth = {"Authorization": f"Bearer {owner.access_token}"}
        for trial in range(TRIALS):
            slug = f"race-{uuid.uuid4().hex[:8]}"
            body = {"name": "Race", "slug": slug}
            responses = await all_at_once(
                [http.post(f"{API}/tenants", json=body, headers=auth) for _ in range(PARALLEL)]
            )
            outcome = statuses(responses)
            record("tenant slug", trial, dict(outcome))
            assert outcome == {201: 1, 409: PARALLEL - 1}, outcome


async def test_parallel_tenants_with_one_name_get_distinct_slugs(server: Server) -> None:
    async with client(server.base_url) as http:
        owner = await sign_up(http)
        auth = {"Authorization": f"Bearer {owner.access_token}"}
        name = f"Same Name {uuid.uuid4().hex[:6]}"
        responses = await all_at_once(
            [
                http.post(f"{API}/tenants", json={"name": name}, headers=auth)
                for _ in range(PARALLEL)
            ]
        )
        record("tenant name", 0, dict(statuses(responses)))
        assert statuses(responses) == {201: PARALLEL}
        assert len({r.json()["slug"] for r in responses}) == PARALLEL


async def test_parallel_acceptances_of_one_invitation_have_one_winner(server: Server) -> None:
    async with client(server.base_url) as http:
        admin = await sign_up(http)
        for trial in range(TRIALS):
            invited = await http.post(
                f"{API}/members",
                json={
                    "email": f"new-{uuid.uuid4().hex[:8]}@example.com",
                    "role_id": str(VIEWER.id),
                },
                headers=admin.headers(),
            )
            assert invited.status_code == 201, invited.text
            body = {"token": invited.json()["invitation_token"], "password": TEST_PASSWORD}
            responses = await all_at_once(
                [http.post(f"{API}/auth/invitations/accept", json=body) for _ in range(PARALLEL)]
            )
            outcome = statuses(responses)
            record("invitation", trial, dict(outcome))
            assert outcome == {201: 1, 409: PARALLEL - 1}, outcome


async def test_parallel_restores_of_one_deleted_risk_have_one_winner(server: Server) -> None:
    async with client(server.base_url) as http:
        admin = await sign_up(http)
        h = admin.headers()
        for trial in range(TRIALS):
            risk = await http.post(
                f"{API}/risks",
                json={"title": f"r{trial}", "impact": 3, "probability": 3},
                headers=h,
            )
            assert risk.status_code == 201, risk.text
            risk_id = risk.json()["id"]
            mitigation = await http.post(
                f"{API}/risks/{risk_id}/mitigations", json={"title": "fix"}, headers=h
            )
            assert mitigation.status_code == 201, mitigation.text
            assert (await http.delete(f"{API}/risks/{risk_id}", headers=h)).status_code == 204
            responses = await all_at_once(
                [http.post(f"{API}/risks/{risk_id}/restore", headers=h) for _ in range(PARALLEL)]
            )
            assert_no_server_error(responses)
            outcome = statuses(responses)
            record("restore", trial, dict(outcome))
            assert outcome[200] == 1 and outcome[409] + outcome[412] == PARALLEL - 1, outcome
            stats = (await http.get(f"{API}/dashboard/stats", headers=h)).json()
            assert stats["total_risks"] == trial + 1  # counted back once, not once per request
            assert stats["mitigations"]["total"] == trial + 1
            history = (await http.get(f"{API}/risks/{risk_id}/history", headers=h)).json()
            assert [e["action"] for e in history["items"]].count("RESTORE") == 1


async def test_parallel_risk_model_changes_from_one_version_have_one_winner(
    server: Server,
) -> None:
    """Each writer sends other bands from the same version: one re-scores, the others get 409
    and change nothing (each risk has one SCORE_CHANGE row per applied change)."""
    async with client(server.base_url) as http:
        admin = await sign_up(http)
        risk_ids = []
        for impact in (2, 3, 4, 5):
            created = await http.post(
                f"{API}/risks",
                json={"title": f"r{impact}", "impact": impact, "probability": impact},
                headers=admin.headers(),
            )
            assert created.status_code == 201, created.text
            risk_ids.append(created.json()["id"])
        for trial in range(TRIALS):
            model = (await http.get(f"{API}/risk-model", headers=admin.headers())).json()
            model.pop("updated_at", None)
            bodies = []
            for i in range(PARALLEL):
                bands = [
                    {"name": "LOW", "min_score": 0},
                    {"name": "HIGH", "min_score": 5 + i + trial},
                ]
                body = {**model, "bands": bands, "appetite_score": i + 1, "review_days": {}}
                bodies.append(body)
            responses = await all_at_once(
                [http.put(f"{API}/risk-model", json=b, headers=admin.headers()) for b in bodies]
            )
            assert_no_server_error(responses)
            outcome = statuses(responses)
            record("risk model", trial, dict(outcome))
            assert outcome == {200: 1, 409: PARALLEL - 1}, outcome
            [winner] = [r.json() for r in responses if r.status_code == 200]
            stored = (await http.get(f"{API}/risk-model", headers=admin.headers())).json()
            assert stored["version"] == model["version"] + 1 == winner["version"]
            assert stored["appetite_score"] == winner["appetite_score"]
            threshold = stored["bands"][1]["min_score"]
            for risk_id in risk_ids:
                risk = (await http.get(f"{API}/risks/{risk_id}", headers=admin.headers())).json()
                assert risk["severity"] == ("HIGH" if risk["score"] >= threshold else "LOW")
        history = await http.get(f"{API}/risks/{risk_ids[-1]}/history", headers=admin.headers())
        changes = [h for h in history.json()["items"] if h["action"] == "SCORE_CHANGE"]
        assert len(changes) <= TRIALS  # never one per losing writer
