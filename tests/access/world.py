"""Objects of a tenant, made through the API, for the route-table driven access tests.

Every tenant route's path parameter must have a factory here and every body-taking route a
body below: a route added without one makes the isolation and permission tests fail.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import update

from openrisk.app import iter_api_routes
from openrisk.methodology.store import default_definition
from openrisk.rbac.catalogue import MANAGER, VIEWER, PredefinedRole
from openrisk.tenants.models import Membership
from openrisk.tenants.service import add_member
from tests.conftest import Account, register

API = "/api/v1"
# Path parameters naming global (not tenant-owned) things.
GLOBAL_PARAMS = {"connector_id": "csv-import"}
# Routes outside any tenant: authentication, platform operators, the caller's own tenants.
UNSCOPED_PREFIXES = (f"{API}/auth", f"{API}/health", f"{API}/system")
UNSCOPED_ROUTES = {("GET", f"{API}/tenants"), ("POST", f"{API}/tenants")}


def permission_of(route: APIRoute) -> str | None:
    def walk(dependant: Any) -> str | None:
        for sub in dependant.dependencies:
            code = getattr(sub.call, "permission", None) or walk(sub)
            if code:
                return str(code)
        return None

    return walk(route.dependant)


def tenant_routes() -> list[tuple[str, APIRoute]]:
    routes = []
    for route in iter_api_routes():
        for method in sorted(route.methods):
            if route.path.startswith(UNSCOPED_PREFIXES) or (method, route.path) in UNSCOPED_ROUTES:
                continue
            routes.append((method, route))
    return routes


def path_params(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Tenant:
    """A tenant seen through one account, with a marker found in every name it creates."""

    app: FastAPI
    http: httpx.AsyncClient
    admin: Account
    marker: str

    async def post(self, path: str, body: Any, as_: Account | None = None) -> dict[str, Any]:
        account = as_ or self.admin
        response = await self.http.post(f"{API}{path}", json=body, headers=account.in_tenant())
        assert response.status_code == 201, (path, response.text)
        return dict(response.json())

    async def member(self, role: PredefinedRole) -> Account:
        account = await register(self.http, tenant_name=unique("sandbox"))
        await self.add(account, role.id, uuid.UUID(self.admin.tenant_id))
        account.tenant_id = self.admin.tenant_id
        return account

    async def add_role(self, account: Account, role_id: uuid.UUID) -> None:
        """Give ``account`` (a member) ``role_id`` in this tenant, directly in the database."""
        async with self.app.state.db.session() as session:
            await session.execute(
                update(Membership)
                .where(
                    Membership.tenant_id == uuid.UUID(self.admin.tenant_id),
                    Membership.user_id == uuid.UUID(account.user_id),
                )
                .values(role_id=role_id)
            )
            await session.commit()
        await self.app.state.authz.bump()  # as the API's role change would

    async def add(self, account: Account, role_id: uuid.UUID, tenant_id: uuid.UUID) -> None:
        async with self.app.state.db.session() as session:
            await add_member(
                session, tenant_id=tenant_id, user_id=uuid.UUID(account.user_id), role_id=role_id
            )
            await session.commit()

    # --- factories: owner is the account that creates the object ("own" scope) ---

    async def risk(self, owner: Account | None = None) -> str:
        body = {"title": unique(self.marker), "impact": 3, "probability": 4}
        return str((await self.post("/risks", body, owner))["id"])

    async def deleted_risk(self, owner: Account | None = None) -> str:
        """A risk of ``owner`` in the bin (deleted by the Admin), for the restore route."""
        risk_id = await self.risk(owner)
        response = await self.http.delete(f"{API}/risks/{risk_id}", headers=self.admin.in_tenant())
        assert response.status_code == 204, response.text
        return risk_id

    async def quantified_risk(self) -> str:
        """A risk with a frequency and loss (its title carries the marker into the
        register's annual loss, as a top contributor)."""
        risk_id = await self.risk()
        body = body_for("PUT", "/risks/{risk_id}/quantification")
        response = await self.http.put(
            f"{API}/risks/{risk_id}/quantification", json=body, headers=self.admin.in_tenant()
        )
        assert response.status_code == 200, response.text
        return risk_id

    async def mitigation(self, owner: Account | None = None) -> str:
        risk_id = await self.risk()
        return str(
            (
                await self.post(
                    f"/risks/{risk_id}/mitigations", {"title": unique(self.marker)}, owner
                )
            )["id"]
        )

    async def subaction(self, mitigation_id: str) -> str:
        body = {"title": unique(self.marker)}
        return str((await self.post(f"/mitigations/{mitigation_id}/subactions", body))["id"])

    async def asset(self) -> str:
        body = {"name": unique(self.marker), "type": "server"}
        return str((await self.post("/assets", body))["id"])

    async def custom_field(self) -> str:
        body = {"name": f"f{uuid.uuid4().hex[:8]}", "label": unique(self.marker), "type": "text"}
        return str((await self.post("/custom-fields", body))["id"])

    async def role(self) -> str:
        return str((await self.post("/roles", {"name": unique(self.marker), "level": 0}))["id"])

    async def member_id(self) -> str:
        return (await self.member(VIEWER)).user_id

    async def token(self, owner: Account | None = None) -> str:
        return str((await self.post("/tokens", {"name": unique(self.marker)}, owner))["id"])

    async def app_id(self) -> str:
        body = {"connector_id": "csv-import", "name": unique(self.marker)}
        return str((await self.post("/marketplace/apps", body))["id"])

    async def invitation(self) -> str:
        """A pending invitation of the tenant (for a Viewer: any role may be given it)."""
        email = f"{unique(self.marker)}@invitee.example.com"
        await self.post("/members", {"email": email, "role_id": str(VIEWER.id)})
        listed = await self.http.get(f"{API}/members/invitations", headers=self.admin.in_tenant())
        return str(next(i["id"] for i in listed.json()["items"] if i["email"] == email))

    async def saved_view(self, owner: Account | None = None) -> str:
        """A saved view of ``owner`` (the caller: views are personal)."""
        body = {"name": unique(self.marker), "query": "status=ACTIVE"}
        return str((await self.post("/saved-views", body, owner))["id"])

    async def report(self) -> str:
        body = {"kind": "executive", "format": "csv"}
        return str((await self.post("/reports", body))["id"])

    async def report_job(self) -> str:
        """A queued report job of the tenant (as a large register's report request makes)."""
        from openrisk.reports.models import ReportJob

        async with self.app.state.db.session() as session:
            job = ReportJob(
                tenant_id=uuid.UUID(self.admin.tenant_id),
                kind="register",
                format="csv",
                requested_by=uuid.UUID(self.admin.user_id),
            )
            session.add(job)
            await session.commit()
            return str(job.id)

    async def risk_model_job(self) -> str:
        """A queued risk model change of the tenant (as a large register's change makes)."""
        from openrisk.methodology.models import RiskModelJob

        async with self.app.state.db.session() as session:
            job = RiskModelJob(
                tenant_id=uuid.UUID(self.admin.tenant_id),
                requested_by=uuid.UUID(self.admin.user_id),
                request={"version": 1},
            )
            session.add(job)
            await session.commit()
            return str(job.id)

    async def acceptance(self) -> str:
        """A submitted acceptance of a risk, requested by a Manager of the tenant (so that any
        other caller may decide it: never the requester)."""
        requester = getattr(self, "_requester", None)
        if requester is None:
            requester = await self.member(MANAGER)
            self._requester = requester
        risk_id = await self.risk()
        expires = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
        body = {"justification": unique(self.marker), "expires_on": expires}
        made = await self.post(f"/risks/{risk_id}/acceptances", body, requester)
        return str(made["id"])

    async def fresh_tenant_for(self, account: Account, role: PredefinedRole) -> str:
        """A throw-away tenant where ``account`` holds ``role`` (for DELETE /tenants/{id})."""
        tenant = await self.http.post(
            f"{API}/tenants", json={"name": unique(self.marker)}, headers=self.admin.headers
        )
        tenant_id = str(tenant.json()["id"])
        if account.user_id != self.admin.user_id:
            await self.add(account, role.id, uuid.UUID(tenant_id))
        return tenant_id


Factory = Callable[[Tenant, "Account | None", dict[str, str]], Awaitable[str]]


async def _tenant_id(t: Tenant, owner: Account | None, ids: dict[str, str]) -> str:
    return t.admin.tenant_id


async def _no_dead_letter(t: Tenant, owner: Account | None, ids: dict[str, str]) -> str:
    """A delivery id with no dead letter: an allowed caller is answered 404, others 403."""
    return str(uuid.uuid4())


FACTORIES: dict[str, Factory] = {
    "risk_id": lambda t, owner, ids: t.risk(owner),
    "mitigation_id": lambda t, owner, ids: t.mitigation(owner),
    "sub_id": lambda t, owner, ids: t.subaction(ids["mitigation_id"]),
    "asset_id": lambda t, owner, ids: t.asset(),
    "field_id": lambda t, owner, ids: t.custom_field(),
    "role_id": lambda t, owner, ids: t.role(),
    "user_id": lambda t, owner, ids: t.member_id(),
    "token_id": lambda t, owner, ids: t.token(owner),
    "app_id": lambda t, owner, ids: t.app_id(),
    "report_id": lambda t, owner, ids: t.report(),
    "job_id": lambda t, owner, ids: t.report_job(),
    "invitation_id": lambda t, owner, ids: t.invitation(),
    "view_id": lambda t, owner, ids: t.saved_view(owner),
    "acceptance_id": lambda t, owner, ids: t.acceptance(),
    "delivery_id": _no_dead_letter,
    "tenant_id": _tenant_id,
}


# Routes whose object must be in a given state: restoring takes a deleted risk.
STATE_FACTORIES: dict[tuple[str, str], Factory] = {
    (f"{API}/risks/{{risk_id}}/restore", "risk_id"): lambda t, owner, ids: t.deleted_risk(owner),
    (f"{API}/risk-model/jobs/{{job_id}}", "job_id"): lambda t, owner, ids: t.risk_model_job(),
}


async def fill_path(t: Tenant, path: str, owner: Account | None) -> str:
    ids: dict[str, str] = {}
    for name in path_params(path):
        if name in GLOBAL_PARAMS:
            ids[name] = GLOBAL_PARAMS[name]
            continue
        if (path, name) in STATE_FACTORIES:
            ids[name] = await STATE_FACTORIES[(path, name)](t, owner, ids)
            continue
        assert name in FACTORIES, f"no factory for path parameter {{{name}}} of {path}"
        ids[name] = await FACTORIES[name](t, owner, ids)
    return path.format(**ids)


def body_for(method: str, path: str) -> dict[str, Any] | None:
    """A valid body for the route, so that a refusal is about access, never about validation."""
    bodies: dict[tuple[str, str], dict[str, Any] | None] = {
        ("POST", "/members"): {
            "email": f"{unique('invitee')}@example.com",
            "role_id": str(VIEWER.id),
        },
        ("PATCH", "/members/{user_id}"): {"role_id": str(VIEWER.id)},
        ("POST", "/members/invitations/{invitation_id}/renew"): None,
        ("POST", "/saved-views"): {"name": unique("view"), "query": "severity=HIGH"},
        ("POST", "/roles"): {"name": unique("role"), "level": 0},
        ("PATCH", "/roles/{role_id}"): {"description": "changed"},
        ("PUT", "/roles/{role_id}/permissions"): {"permissions": ["risk:read"]},
        ("POST", "/tokens"): {"name": unique("token"), "permissions": ["risk:read"]},
        ("POST", "/tokens/{token_id}/rotate"): None,
        ("PATCH", "/tenants/{tenant_id}"): {"name": unique("renamed")},
        ("POST", "/marketplace/connectors/{connector_id}/reviews"): {"rating": 4},
        ("POST", "/marketplace/apps"): {"connector_id": "csv-import", "name": unique("app")},
        ("PATCH", "/marketplace/apps/{app_id}"): {"name": unique("renamed")},
        ("POST", "/marketplace/apps/{app_id}/enable"): None,
        ("POST", "/marketplace/apps/{app_id}/disable"): None,
        ("POST", "/marketplace/apps/{app_id}/sync"): None,
        ("POST", "/marketplace/apps/{app_id}/deliveries/{delivery_id}/redeliver"): None,
        ("POST", "/reports"): {"kind": "executive", "format": "csv"},
        ("POST", "/risks"): {"title": unique("risk"), "impact": 2, "probability": 2},
        ("POST", "/risks/import"): None,  # multipart, see request()
        ("POST", "/risks/bulk"): None,  # ids from the world, see request()
        ("POST", "/risks/{risk_id}/restore"): None,
        ("PATCH", "/risks/{risk_id}"): {"description": "changed"},
        ("PATCH", "/mitigations/{mitigation_id}"): {"description": "changed"},
        ("POST", "/mitigations/{mitigation_id}/subactions"): {"title": "step"},
        ("PATCH", "/mitigations/{mitigation_id}/subactions/{sub_id}"): {"completed": True},
        ("POST", "/risks/{risk_id}/mitigations"): {"title": "fix it"},
        ("PUT", "/risks/{risk_id}/quantification"): {
            "frequency": {"min": 0.5, "most_likely": 1, "max": 3},
            "loss": {"low": 10_000, "high": 500_000},
        },
        ("PUT", "/quantitative/appetite"): {"threshold": 1_000_000, "max_probability": 0.05},
        ("POST", "/assets"): {"name": unique("asset"), "type": "server"},
        ("PATCH", "/assets/{asset_id}"): {"name": unique("asset")},
        ("POST", "/custom-fields"): {
            "name": f"f{uuid.uuid4().hex[:8]}",
            "label": "L",
            "type": "text",
        },
        ("PATCH", "/custom-fields/{field_id}"): {"label": "M"},
        ("PUT", "/risk-model"): {**default_definition(), "version": 1},
        ("POST", "/risks/{risk_id}/acceptances"): {
            "justification": "Compensated by monitoring",
            "expires_on": (datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
        },
        ("POST", "/risks/{risk_id}/reviews"): {"outcome": "unchanged", "comment": "seen"},
        ("POST", "/acceptances/{acceptance_id}/approve"): {"comment": "ok"},
        ("POST", "/acceptances/{acceptance_id}/reject"): {"comment": "no"},
        ("POST", "/acceptances/{acceptance_id}/revoke"): {"comment": "ended"},
    }
    key = (method, path.removeprefix(API))
    if method in ("GET", "DELETE"):
        return None
    assert key in bodies, f"no test body for {method} {path}: add one to tests/access/world.py"
    return bodies[key]


async def request(
    http: httpx.AsyncClient,
    method: str,
    template: str,
    url: str,
    account: Account,
    extra_ids: list[str] | None = None,
) -> httpx.Response:
    headers = account.in_tenant()
    if template == f"{API}/risks/import":
        files = {"file": ("risks.csv", b"title,impact,probability\nimported,1,1\n", "text/csv")}
        return await http.post(url, files=files, params={"dry_run": "true"}, headers=headers)
    if template == f"{API}/risks/bulk":
        body = {"action": "delete", "ids": extra_ids or [str(uuid.uuid4())]}
        return await http.post(url, json=body, headers=headers)
    return await http.request(method, url, json=body_for(method, template), headers=headers)
