"""The pages and their forms, through httpx: every write goes through the same services and
permission checks as the API, and the API sees the result."""

from __future__ import annotations

import re
import uuid

import httpx
from fastapi import FastAPI

from openrisk.rbac.catalogue import ADMIN, ANALYST, MANAGER, VIEWER
from tests.api.rbac_helpers import member_with_role
from tests.api.test_risks_helpers import count_queries
from tests.conftest import Account, client_for
from tests.web.helpers import csrf_of, sign_in

RISK_FORM = {
    "title": "Web form risk",
    "description": "Made in a browser",
    "impact": "4",
    "probability": "2",
    "status": "ACTIVE",
    "treatment": "MITIGATE",
    "tags": "web, Forms",
    "frameworks": "ISO 27001",
    "review_date": "",
}


async def test_every_main_page_renders(client: httpx.AsyncClient, admin: Account) -> None:
    browser = await sign_in(client, admin)
    for path in (
        "/",
        "/?period=7d&days=90",
        "/risks",
        "/risks?q=nothing&status=ACTIVE&severity=HIGH&sort=title&order=asc&page=2",
        "/risks?page=-3&page_size=7&sort=nope",  # bad paging/sorting values: defaults
        "/risks/new",
        "/assets",
        "/marketplace",
        "/marketplace/connectors/webhook",
        "/settings/members",
        f"/settings/members/{admin.user_id}",
        "/settings/roles",
        "/settings/tokens",
        "/audit",
        "/audit?since=2020-01-01&until=bad&resource=risk&actor=x",
    ):
        response = await browser.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code}"
        assert response.headers["content-type"].startswith("text/html")


async def test_risk_form_creates_edits_and_deletes(
    client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    created = await browser.post("/risks/new", RISK_FORM)
    assert created.status_code == 303, created.text
    risk_id = created.headers["location"].rsplit("/", 1)[1]
    api = (await client.get(f"/api/v1/risks/{risk_id}", headers=admin.in_tenant())).json()
    assert api["title"] == "Web form risk" and api["score"] == 8.0
    assert api["tags"] == ["web", "forms"] and api["owner_id"] == admin.user_id

    detail = await browser.get(f"/risks/{risk_id}")
    assert "Risk “Web form risk” created." in detail.text  # the flash message
    assert "Web form risk" in detail.text and "Create" in detail.text  # history

    edited = await browser.post(
        f"/risks/{risk_id}/edit", {**RISK_FORM, "title": "Renamed", "version": "1"}
    )
    assert edited.status_code == 303
    api = (await client.get(f"/api/v1/risks/{risk_id}", headers=admin.in_tenant())).json()
    assert api["title"] == "Renamed" and api["version"] == 2

    stale = await browser.post(
        f"/risks/{risk_id}/edit", {**RISK_FORM, "title": "Lost update", "version": "1"}
    )
    assert stale.status_code == 422 and "Someone changed this risk" in stale.text
    assert 'value="Lost update"' in stale.text  # what was typed is kept

    deleted = await browser.post(f"/risks/{risk_id}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/risks"
    gone = await client.get(f"/api/v1/risks/{risk_id}", headers=admin.in_tenant())
    assert gone.status_code == 404


async def test_risk_form_errors_are_shown_next_to_their_fields(
    client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    response = await browser.post(
        "/risks/new",
        {
            **RISK_FORM,
            "title": "  ",
            "impact": "9",
            "review_date": "31/12/2030",
            "asset_ids": str(uuid.uuid4()),
        },
    )
    assert response.status_code == 422
    text = response.text
    for field in ("title", "impact", "review_date"):
        assert f'id="f-{field}-error"' in text, field
        assert re.search(rf'id="f-{field}"[^>]*aria-invalid="true"', text), field
    assert "This field is required." in text
    # the service's own checks (unknown asset) name their field too
    response = await browser.post("/risks/new", {**RISK_FORM, "asset_ids": str(uuid.uuid4())})
    assert response.status_code == 422 and 'id="f-asset_ids-error"' in response.text


async def test_analysts_edit_only_their_own_risks(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    theirs = await client.post(
        "/api/v1/risks",
        json={"title": "Admin's risk", "impact": 2, "probability": 2},
        headers=admin.in_tenant(),
    )
    analyst = await member_with_role(app, client, admin, ANALYST)
    async with client_for(app) as http:
        browser = await sign_in(http, analyst)
        mine = await browser.post("/risks/new", {**RISK_FORM, "title": "Analyst's risk"})
        assert mine.status_code == 303
        own = await browser.get(mine.headers["location"])
        assert "/edit" in own.text
        other = await browser.get(f"/risks/{theirs.json()['id']}")
        assert other.status_code == 200 and "/edit" not in other.text
        assert (await browser.get(f"/risks/{theirs.json()['id']}/edit")).status_code == 403
        forged = await browser.post(
            f"/risks/{theirs.json()['id']}/edit", {**RISK_FORM, "title": "Hijacked"}
        )
        assert forged.status_code == 403
        # no owner picker without risk:assign, and a forged owner is refused
        form = await browser.get("/risks/new")
        assert 'name="owner_id"' not in form.text
        reassigned = await browser.post("/risks/new", {**RISK_FORM, "owner_id": admin.user_id})
        assert reassigned.status_code == 403


async def test_mitigations_and_sub_actions_from_the_risk_page(
    client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    risk_id = (await browser.post("/risks/new", RISK_FORM)).headers["location"].rsplit("/", 1)[1]
    invalid = await browser.post(
        f"/risks/{risk_id}/mitigations", {"title": "", "cost": "7", "effort_days": "1"}
    )
    assert invalid.status_code == 422
    assert 'id="f-title-error"' in invalid.text and 'id="f-cost-error"' in invalid.text
    planned = await browser.post(
        f"/risks/{risk_id}/mitigations",
        {"title": "Patch it", "cost": "1", "effort_days": "3", "assignee_id": admin.user_id},
    )
    assert planned.status_code == 303
    assert planned.headers["location"] == f"/risks/{risk_id}#mitigations"
    listed = await client.get(f"/api/v1/risks/{risk_id}/mitigations", headers=admin.in_tenant())
    mitigation = listed.json()["items"][0]
    mid = mitigation["id"]

    added = await browser.post(
        f"/mitigations/{mid}/subactions", {"title": "Step one", "risk_id": risk_id}
    )
    assert added.status_code == 303
    await browser.post(f"/mitigations/{mid}/subactions", {"title": "Step two", "risk_id": risk_id})
    subs = (await client.get(f"/api/v1/mitigations/{mid}", headers=admin.in_tenant())).json()
    first = subs["sub_actions"][0]["id"]
    toggled = await browser.post(
        f"/mitigations/{mid}/subactions/{first}/toggle", {"completed": "true", "risk_id": risk_id}
    )
    assert toggled.status_code == 303
    after = (await client.get(f"/api/v1/mitigations/{mid}", headers=admin.in_tenant())).json()
    assert after["progress"] == 50

    updated = await browser.post(
        f"/mitigations/{mid}/update", {"status": "IN_PROGRESS", "risk_id": risk_id}
    )
    assert updated.status_code == 303
    page = await browser.get(f"/risks/{risk_id}")
    assert "Step one" in page.text and 'value="50"' in page.text and "In progress" in page.text
    removed = await browser.post(f"/mitigations/{mid}/delete", {"risk_id": risk_id})
    assert removed.status_code == 303
    left = await client.get(f"/api/v1/risks/{risk_id}/mitigations", headers=admin.in_tenant())
    assert left.json()["total"] == 0


async def test_assets_are_created_and_edited(client: httpx.AsyncClient, admin: Account) -> None:
    browser = await sign_in(client, admin)
    bad = await browser.post("/assets", {"name": "", "type": "server", "criticality": "HUGE"})
    assert bad.status_code == 422
    assert 'id="f-name-error"' in bad.text and 'id="f-criticality-error"' in bad.text
    made = await browser.post(
        "/assets", {"name": "Payroll", "type": "application", "criticality": "LOW"}
    )
    assert made.status_code == 303
    asset_id = made.headers["location"].rsplit("/", 1)[1]
    risk = await client.post(
        "/api/v1/risks",
        json={"title": "Payroll fraud", "impact": 4, "probability": 5, "asset_ids": [asset_id]},
        headers=admin.in_tenant(),
    )
    assert risk.json()["score"] == 16.0
    edited = await browser.post(
        f"/assets/{asset_id}",
        {"name": "Payroll", "type": "application", "criticality": "CRITICAL"},
    )
    assert edited.status_code == 303
    rescored = await client.get(f"/api/v1/risks/{risk.json()['id']}", headers=admin.in_tenant())
    assert rescored.json()["score"] == 30.0
    page = await browser.get(f"/assets/{asset_id}")
    assert "Payroll fraud" in page.text
    listing = await browser.get("/assets?criticality=CRITICAL&q=pay")
    assert "Payroll" in listing.text


async def test_dashboard_heatmap_matches_the_matrix_api(
    client: httpx.AsyncClient, admin: Account
) -> None:
    for impact, probability in ((5, 5), (5, 5), (1, 3), (2, 4)):
        await client.post(
            "/api/v1/risks",
            json={"title": "Heat", "impact": impact, "probability": probability},
            headers=admin.in_tenant(),
        )
    browser = await sign_in(client, admin)
    page = await browser.get("/")
    cells = {
        (int(i), int(p)): int(n)
        for i, p, n in re.findall(
            r'data-impact="(\d)" data-probability="(\d)" data-count="(\d+)"', page.text
        )
    }
    api = await client.get("/api/v1/dashboard/matrix", headers=admin.in_tenant())
    assert cells == {(c["impact"], c["probability"]): c["count"] for c in api.json()["cells"]}
    assert cells[(5, 5)] == 2
    stats = await client.get("/api/v1/dashboard/stats", headers=admin.in_tenant())
    critical = stats.json()["by_severity"]["CRITICAL"]
    assert f'data-testid="count-critical">{critical}<' in page.text
    assert "<polyline" in page.text  # the trend chart


async def test_the_risk_list_costs_a_fixed_number_of_queries(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    for n in range(25):
        await client.post(
            "/api/v1/risks",
            json={"title": f"Counted {n}", "impact": 3, "probability": 3, "tags": ["x"]},
            headers=admin.in_tenant(),
        )
    browser = await sign_in(client, admin)
    await browser.get("/risks")  # warm the authorization cache
    with count_queries(app) as small:
        await browser.get("/risks?page_size=20")
    with count_queries(app) as large:
        await browser.get("/risks?page_size=100")
    assert len(small) == len(large) <= 8, small


async def test_roles_are_created_in_the_matrix_and_assigned(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    analyst = await member_with_role(app, client, admin, ANALYST)
    browser = await sign_in(client, admin)
    grid = await browser.get("/settings/roles")
    assert grid.text.count('form="role-new"') >= 44 + 3  # a select per permission + fields
    invalid = await browser.post("/settings/roles", {"name": "", "level": "12", "risk:read": "all"})
    assert invalid.status_code == 422
    assert 'id="f-name-error"' in invalid.text and 'id="f-level-error"' in invalid.text
    created = await browser.post(
        "/settings/roles",
        {
            "name": "Risk reader",
            "description": "reads",
            "level": "1",
            "risk:read": "all",
            "risk:update": "own",
            "audit:read": "",
        },
    )
    assert created.status_code == 303
    roles = (await client.get("/api/v1/roles", headers=admin.in_tenant())).json()["items"]
    role = next(r for r in roles if r["name"] == "Risk reader")
    assert role["permissions"] == ["risk:read", "risk:update:own"] and role["level"] == 1

    saved = await browser.post(
        f"/settings/roles/{role['id']}",
        {"name": "Risk reader", "description": "reads", "level": "1", "risk:read": "all"},
    )
    assert saved.status_code == 303
    assigned = await browser.post(
        f"/settings/members/{analyst.user_id}/role", {"role_id": role["id"]}
    )
    assert assigned.status_code == 303
    member = await client.get(f"/api/v1/members/{analyst.user_id}", headers=admin.in_tenant())
    assert member.json()["role_name"] == "Risk reader"
    in_use = await browser.post(f"/settings/roles/{role['id']}/delete")
    assert in_use.status_code == 303
    flashed = await browser.get("/settings/roles")
    assert "still assigned" in flashed.text
    # the assignee's next request already has the new role's permissions only
    async with client_for(app) as http:
        person = await sign_in(http, analyst, tenant_id=admin.tenant_id)
        assert (await person.get("/risks")).status_code == 200
        assert (await person.get("/assets")).status_code == 403


async def test_role_assignment_obeys_the_levels(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    manager = await member_with_role(app, client, admin, MANAGER)
    viewer = await member_with_role(app, client, admin, VIEWER)
    async with client_for(app) as http:
        browser = await sign_in(http, manager)
        page = await browser.get("/settings/members")
        options = re.findall(
            r"<option value=\"[^\"]+\"[^>]*>([A-Za-z ]+) \(\d\)</option>", page.text
        )
        assert "Admin" not in options and "Manager" not in options and "Analyst" in options
        # rule 3: a Manager cannot hand out Admin, even with a hand-made form
        forged = await browser.post(
            f"/settings/members/{viewer.user_id}/role", {"role_id": str(ADMIN.id)}
        )
        assert forged.status_code == 403
        # rule 4: nor manage the Admin
        demote = await browser.post(
            f"/settings/members/{admin.user_id}/role", {"role_id": str(VIEWER.id)}
        )
        assert demote.status_code == 403
        promote = await browser.post(
            f"/settings/members/{viewer.user_id}/role", {"role_id": str(ANALYST.id)}
        )
        assert promote.status_code == 303
        assert (await browser.get("/settings/roles")).status_code == 200
        assert 'form="role-new"' not in (await browser.get("/settings/roles")).text
    # the last Admin cannot be demoted (409 shown as a message)
    admin_browser = await sign_in(client, admin)
    last = await admin_browser.post(
        f"/settings/members/{admin.user_id}/role", {"role_id": str(VIEWER.id)}
    )
    assert last.status_code == 303
    assert "last Admin" in (await admin_browser.get("/settings/members")).text


async def test_invitations_from_the_members_page(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    invited = await browser.post("/settings/members", {"email": email, "role_id": str(ANALYST.id)})
    assert invited.status_code == 200
    link = re.search(r'value="http://testserver(/invitations/[^"]+)"', invited.text)
    assert link, invited.text
    bad = await browser.post("/settings/members", {"email": "not-an-email", "role_id": "x"})
    assert bad.status_code == 422 and 'id="f-email-error"' in bad.text
    async with client_for(app) as http:
        form = await http.get(link.group(1))
        token = csrf_of(form.text)
        short = await http.post(
            link.group(1), data={"csrf_token": token, "password": "short", "password_confirm": ""}
        )
        assert short.status_code == 422 and 'id="f-password-error"' in short.text
        accepted = await http.post(
            link.group(1),
            data={
                "csrf_token": token,
                "full_name": "New Person",
                "password": "a-long-enough-password",
                "password_confirm": "a-long-enough-password",
            },
        )
        assert accepted.status_code == 303
        home = await http.get("/")
        assert home.status_code == 200 and email in home.text
        again = await http.post(
            link.group(1),
            data={
                "csrf_token": token,
                "password": "a-long-enough-password",
                "password_confirm": "a-long-enough-password",
            },
        )
        assert again.status_code == 409  # single use: the link is spent


async def test_tokens_page_shows_the_secret_once(client: httpx.AsyncClient, admin: Account) -> None:
    browser = await sign_in(client, admin)
    made = await browser.post(
        "/settings/tokens", {"name": "ci", "expires": "30", "permissions": "risk:read"}
    )
    assert made.status_code == 200
    secret = re.search(r'value="(orsk_[A-Za-z0-9_-]{43,})"', made.text)
    assert secret
    used = await client.get("/api/v1/risks", headers={"Authorization": f"Bearer {secret[1]}"})
    assert used.status_code == 200
    denied = await client.get("/api/v1/assets", headers={"Authorization": f"Bearer {secret[1]}"})
    assert denied.status_code == 403
    page = await browser.get("/settings/tokens")
    assert secret[1] not in page.text and secret[1][:12] in page.text
    tokens = (await client.get("/api/v1/tokens", headers=admin.in_tenant())).json()["items"]
    revoked = await browser.post(f"/settings/tokens/{tokens[0]['id']}/revoke")
    assert revoked.status_code == 303
    after = await client.get("/api/v1/risks", headers={"Authorization": f"Bearer {secret[1]}"})
    assert after.status_code == 401


async def test_audit_log_lists_and_filters_events(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    await browser.post("/risks/new", {**RISK_FORM, "title": "Audited"})
    page = await browser.get("/audit?action=risk.create&resource=risk")
    assert page.status_code == 200 and "<code>risk.create</code>" in page.text
    assert "<code>auth.login</code>" not in page.text
    logins = await browser.get("/audit?action=auth.login")
    assert "<code>auth.login</code>" in logins.text
    analyst = await member_with_role(app, client, admin, ANALYST)
    async with client_for(app) as http:
        other = await sign_in(http, analyst)
        assert (await other.get("/audit")).status_code == 403


async def test_marketplace_install_configure_and_toggle(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    page = await browser.get("/marketplace/connectors/webhook")
    assert 'name="cfg.url"' in page.text and 'type="password"' in page.text
    invalid = await browser.post(
        "/marketplace/connectors/webhook/install",
        {"cfg.url": "ftp://nope", "cfg.secret": "short", "cfg.events": "risk.created"},
    )
    assert invalid.status_code == 422
    assert 'id="cfg-url-error"' in invalid.text and 'id="cfg-secret-error"' in invalid.text
    assert "short" not in re.sub(r'value="[^"]*"', "", invalid.text.split("cfg-secret-error")[1])

    installed = await browser.post(
        "/marketplace/connectors/csv-import/install",
        {"name": "Imports", "cfg.dry_run": "on", "sync_interval_s": "600"},
    )
    assert installed.status_code == 303, installed.text
    app_path = installed.headers["location"]
    app_id = app_path.rsplit("/", 1)[1]
    api = await client.get(f"/api/v1/marketplace/apps/{app_id}", headers=admin.in_tenant())
    assert api.json()["configuration"] == {"dry_run": True}
    assert api.json()["sync_interval_s"] == 600

    configured = await browser.post(
        f"{app_path}/configure", {"name": "Imports", "sync_interval_s": "900"}
    )
    assert configured.status_code == 303
    api = await client.get(f"/api/v1/marketplace/apps/{app_id}", headers=admin.in_tenant())
    assert api.json()["configuration"] == {"dry_run": False}
    assert api.json()["sync_interval_s"] == 900
    assert (await browser.post(f"{app_path}/disable")).status_code == 303
    api = await client.get(f"/api/v1/marketplace/apps/{app_id}", headers=admin.in_tenant())
    assert api.json()["status"] == "disabled"
    assert (await browser.post(f"{app_path}/enable")).status_code == 303
    nothing = await browser.post(f"{app_path}/sync")  # no file, no csv_text: a message
    assert nothing.status_code == 303
    assert "upload a CSV file" in (await browser.get(app_path)).text
    synced = await client.post(
        f"{app_path}/sync",
        data={"csrf_token": browser.csrf},
        files={"file": ("risks.csv", b"title,impact,probability\nImported via UI,2,3\n")},
    )
    assert synced.status_code == 303
    detail = await browser.get(app_path)
    assert "Sync success" in detail.text and "configure" in detail.text  # flash and logs
    found = await client.get("/api/v1/risks?q=Imported", headers=admin.in_tenant())
    assert found.json()["total"] == 1

    viewer = await member_with_role(app, client, admin, VIEWER)
    async with client_for(app) as http:
        reader = await sign_in(http, viewer)
        page = await reader.get("/marketplace/connectors/webhook")
        assert "install-form" not in page.text
        assert (await reader.get(app_path)).status_code == 200
        forged = await reader.post(f"{app_path}/disable")
        assert forged.status_code == 403
    uninstall = await browser.post(f"{app_path}/uninstall")
    assert uninstall.status_code == 303
    gone = await client.get(f"/api/v1/marketplace/apps/{app_id}", headers=admin.in_tenant())
    assert gone.status_code == 404


async def test_another_tenants_objects_are_not_found(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await client.post(
        "/api/v1/risks",
        json={"title": "Private", "impact": 2, "probability": 2},
        headers=admin.in_tenant(),
    )
    risk_id = risk.json()["id"]
    from tests.conftest import register

    outsider = await register(client, tenant_name="Outsider")
    async with client_for(app) as http:
        browser = await sign_in(http, outsider)
        for path in (f"/risks/{risk_id}", f"/risks/{risk_id}/edit"):
            assert (await browser.get(path)).status_code == 404, path
        for path in (f"/risks/{risk_id}/delete", f"/risks/{risk_id}/mitigations"):
            assert (await browser.post(path, {"title": "x"})).status_code == 404, path
    assert (await client.get(f"/api/v1/risks/{risk_id}", headers=admin.in_tenant())).json()[
        "title"
    ] == "Private"


async def test_custom_fields_appear_in_the_risk_form_with_their_errors(
    client: httpx.AsyncClient, admin: Account
) -> None:
    for body in (
        {"name": "budget", "label": "Budget (k€)", "type": "number", "required": True},
        {"name": "region", "label": "Region", "type": "choice", "options": ["EU", "US"]},
    ):
        made = await client.post("/api/v1/custom-fields", json=body, headers=admin.in_tenant())
        assert made.status_code == 201, made.text
    browser = await sign_in(client, admin)
    form = await browser.get("/risks/new")
    assert 'name="cf_budget"' in form.text and ">Budget (k€)" in form.text
    assert '<option value="EU"' in form.text
    missing = await browser.post("/risks/new", {**RISK_FORM, "cf_region": "EU"})
    assert missing.status_code == 422
    assert 'id="f-cf_budget-error"' in missing.text and "Budget (k€): is required" in missing.text
    made = await browser.post("/risks/new", {**RISK_FORM, "cf_budget": "12.5", "cf_region": "US"})
    assert made.status_code == 303
    risk_id = made.headers["location"].rsplit("/", 1)[1]
    api = await client.get(f"/api/v1/risks/{risk_id}", headers=admin.in_tenant())
    assert api.json()["custom_fields"] == {"budget": 12.5, "region": "US"}
    cleared = await browser.post(
        f"/risks/{risk_id}/edit",
        {**RISK_FORM, "cf_budget": "3", "cf_region": "", "version": str(api.json()["version"])},
    )
    assert cleared.status_code == 303
    api = await client.get(f"/api/v1/risks/{risk_id}", headers=admin.in_tenant())
    assert api.json()["custom_fields"] == {"budget": 3}
