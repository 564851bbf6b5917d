"""Realistic register data: assets, risks with their whole history, mitigations, custom fields.

Used by the demo tenant (``populate_demo_tenant``) and by ``openrisk seed --risks N`` (bulk.py).
Everything is generated in memory as rows and written with bulk statements: COPY on PostgreSQL
(through a staging table where row-level security applies), multi-row INSERTs on SQLite. Each
risk's history is a coherent story (CREATE, then updates and status changes at later times)
whose last row is the risk's current state, so the dashboard timeline computed from history
moves the way the register did. The daily aggregates are then
rebuilt from those history rows.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.assets.models import Asset
from openrisk.core.db.bulk import insert_rows
from openrisk.custom_fields.models import CustomField
from openrisk.mitigations.models import Mitigation, SubAction
from openrisk.risks import labels, rollups
from openrisk.risks.enums import HistoryAction, RiskStatus
from openrisk.risks.history import rebuild_daily_stats
from openrisk.risks.models import Risk, RiskAsset, RiskHistory, RiskLabel
from openrisk.risks.scoring import DEFAULT_MODEL, compute_score, severity_for

THREATS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "Ransomware encrypts {asset}",
        ("malware", "ransomware"),
        "A phishing email or exposed "
        "remote access lets an attacker deploy ransomware that encrypts {asset}.",
    ),
    (
        "Phishing campaign targets {team} staff",
        ("phishing", "social-engineering"),
        "Credential-harvesting emails aimed at {team} lead to account takeover.",
    ),
    (
        "Unpatched vulnerability in {asset}",
        ("vulnerability", "patching"),
        "A critical CVE remains unpatched on {asset} beyond the patching SLA.",
    ),
    (
        "Third-party breach at {vendor}",
        ("third-party", "supply-chain"),
        "{vendor} processes our data; a breach on their side exposes customer records.",
    ),
    (
        "Insider exfiltrates data from {asset}",
        ("insider", "data-loss"),
        "A departing employee copies sensitive data from {asset} to personal storage.",
    ),
    (
        "Cloud storage misconfiguration exposes {data}",
        ("cloud", "misconfiguration"),
        "A public bucket or over-permissive share exposes {data} to the internet.",
    ),
    (
        "DDoS attack takes {asset} offline",
        ("availability", "ddos"),
        "A volumetric attack saturates links and makes {asset} unavailable to customers.",
    ),
    (
        "Key person dependency in {team}",
        ("people", "continuity"),
        "Only one engineer in {team} knows how to operate critical processes.",
    ),
    (
        "GDPR non-compliance in {process}",
        ("privacy", "compliance"),
        "Personal data in {process} lacks a lawful basis, retention rules or a DPIA.",
    ),
    (
        "Backup failure for {asset}",
        ("backup", "continuity"),
        "Backups of {asset} are not tested; a restore may fail when it is needed.",
    ),
    (
        "Weak access control on {asset}",
        ("access-control", "iam"),
        "Shared admin accounts and missing MFA on {asset} allow privilege misuse.",
    ),
    (
        "Payment fraud through {process}",
        ("fraud", "finance"),
        "Business email compromise redirects supplier payments in {process}.",
    ),
    (
        "Outage of {vendor} service",
        ("third-party", "availability"),
        "A prolonged outage at {vendor} interrupts {process}.",
    ),
    (
        "Data centre power failure affects {asset}",
        ("facilities", "availability"),
        "A power or cooling failure stops {asset}; failover is manual.",
    ),
    (
        "Secrets leaked in source code of {asset}",
        ("secrets", "devsecops"),
        "API keys committed to the repository of {asset} could be abused.",
    ),
    (
        "Regulatory change impacts {process}",
        ("compliance", "regulation"),
        "New DORA/NIS2 obligations require changes to {process} within 12 months.",
    ),
    (
        "Lost or stolen laptop with {data}",
        ("endpoint", "data-loss"),
        "An unencrypted laptop holding {data} is lost while travelling.",
    ),
    (
        "SQL injection in {asset}",
        ("appsec", "vulnerability"),
        "Input validation gaps in {asset} allow database queries to be altered.",
    ),
)
TEAMS = (
    "Finance",
    "HR",
    "Sales",
    "Customer Support",
    "Engineering",
    "Procurement",
    "Legal",
    "Marketing",
    "IT Operations",
    "Executive",
)
VENDORS = (
    "Acme Payroll",
    "CloudHost Inc.",
    "DataDog",
    "Salesforce",
    "Okta",
    "Stripe",
    "Zendesk",
    "ServiceNow",
    "Atlassian",
    "Workday",
)
DATA = (
    "customer records",
    "payroll data",
    "cardholder data",
    "health records",
    "source code",
    "board minutes",
    "contracts",
    "marketing leads",
)
PROCESSES = (
    "customer onboarding",
    "payroll",
    "supplier payments",
    "recruitment",
    "incident response",
    "order fulfilment",
    "marketing automation",
    "billing",
)
FRAMEWORKS = ("ISO27001", "NIST CSF", "SOC 2", "PCI DSS", "GDPR", "HIPAA", "DORA", "NIS2")
ASSETS: tuple[tuple[str, str, str], ...] = (
    ("Customer portal", "application", "CRITICAL"),
    ("Payment gateway", "application", "CRITICAL"),
    ("Core banking database", "database", "CRITICAL"),
    ("Active Directory", "identity", "CRITICAL"),
    ("ERP (SAP)", "application", "HIGH"),
    ("CRM (Salesforce)", "saas", "HIGH"),
    ("Payroll database", "database", "HIGH"),
    ("Data warehouse", "database", "HIGH"),
    ("AWS production account", "cloud", "HIGH"),
    ("Kubernetes cluster", "infrastructure", "HIGH"),
    ("VPN gateway", "network", "HIGH"),
    ("Email (Microsoft 365)", "saas", "MEDIUM"),
    ("Source code repository", "application", "MEDIUM"),
    ("CI/CD pipeline", "infrastructure", "MEDIUM"),
    ("Backup storage", "infrastructure", "MEDIUM"),
    ("HR system (Workday)", "saas", "MEDIUM"),
    ("Core switch", "network", "MEDIUM"),
    ("Intranet", "application", "LOW"),
    ("Laptop fleet", "endpoint", "LOW"),
    ("Mobile devices", "endpoint", "LOW"),
    ("Office Wi-Fi", "network", "LOW"),
    ("Marketing website", "application", "LOW"),
    ("Call centre telephony", "infrastructure", "MEDIUM"),
    ("Head office building", "facility", "MEDIUM"),
)
MITIGATIONS = (
    "Enforce MFA for all administrators",
    "Deploy EDR on servers and laptops",
    "Quarterly restore tests of backups",
    "Patch within 14 days of release",
    "Security awareness training",
    "Vendor security assessment",
    "Network segmentation of critical systems",
    "Data loss prevention rules",
    "Encrypt data at rest",
    "Incident response playbook and exercise",
    "Cross-train a second engineer",
    "Web application firewall rules",
    "Secret scanning in CI",
    "Privileged access management",
    "Contractual SLA and exit plan with supplier",
)
SUB_ACTIONS = (
    "Scope and owners agreed",
    "Budget approved",
    "Pilot completed",
    "Rolled out to production",
    "Evidence collected for audit",
    "Runbook updated",
)
BUSINESS_UNITS = ("Retail", "Corporate", "Operations", "IT", "Finance")

# final status of a risk: (status, weight)
log = logging.getLogger(__name__)

STATUS_WEIGHTS = (
    (RiskStatus.DRAFT, 8),
    (RiskStatus.ACTIVE, 45),
    (RiskStatus.MITIGATED, 22),
    (RiskStatus.ACCEPTED, 10),
    (RiskStatus.CLOSED, 15),
)
LEVEL_WEIGHTS = (6, 17, 30, 28, 19)  # 1..5: all severities appear, mostly MEDIUM/HIGH


@dataclass
class Rows:
    """Rows of one batch, by table, ready for a bulk write."""

    risks: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    mitigations: list[dict[str, Any]] = field(default_factory=list)
    sub_actions: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.risks)


@dataclass(frozen=True)
class AssetRef:
    id: uuid.UUID
    criticality: str
    name: str


def now_utc() -> datetime:
    return datetime.now(UTC)


def asset_rows(
    rng: random.Random, *, tenant_id: uuid.UUID, count: int, now: datetime
) -> list[dict[str, Any]]:
    rows = []
    for n in range(count):
        name, kind, criticality = ASSETS[n % len(ASSETS)]
        if n >= len(ASSETS):
            name = f"{name} #{n // len(ASSETS) + 1}"
            criticality = rng.choice(("LOW", "MEDIUM", "MEDIUM", "HIGH", "CRITICAL"))
        created = now - timedelta(days=rng.uniform(90, 400))
        rows.append(
            {
                "id": uuid.uuid4(),
                "tenant_id": tenant_id,
                "name": name,
                "type": kind,
                "criticality": criticality,
                "owner": rng.choice(TEAMS),
                "external_id": f"CMDB-{10000 + n}",
                "description": f"{name} ({kind}), owned by {rng.choice(TEAMS)}.",
                "deleted_at": None,
                "created_at": created,
                "updated_at": created,
            }
        )
    return rows


def custom_field_rows(tenant_id: uuid.UUID, now: datetime) -> list[dict[str, Any]]:
    base = {"tenant_id": tenant_id, "created_at": now, "updated_at": now, "required": False}
    return [
        {
            **base,
            "id": uuid.uuid4(),
            "name": "business_unit",
            "label": "Business unit",
            "type": "choice",
            "options": list(BUSINESS_UNITS),
            "description": "Which part of the business carries the risk.",
        },
        {
            **base,
            "id": uuid.uuid4(),
            "name": "annual_loss_eur",
            "label": "Annualised loss expectancy (EUR)",
            "type": "number",
            "options": [],
            "description": "Expected yearly loss if nothing is done.",
        },
    ]


def _level(rng: random.Random) -> int:
    return rng.choices(range(1, 6), weights=LEVEL_WEIGHTS)[0]


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    if end <= start:
        return start
    return start + (end - start) * rng.random()


def _history(
    tenant_id: uuid.UUID,
    risk_id: uuid.UUID,
    action: HistoryAction,
    *,
    impact: int,
    probability: int,
    score: Decimal,
    status: str,
    prev_score: Decimal | None,
    prev_status: str | None,
    changed_by: uuid.UUID,
    changes: dict[str, Any],
    at: datetime,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "risk_id": risk_id,
        "action": action.value,
        "impact": impact,
        "probability": probability,
        "score": score,
        "severity": severity_for(score).value,
        "status": status,
        "prev_score": prev_score,
        "prev_status": prev_status,
        "changed_by": changed_by,
        "changes": changes,
        "created_at": at,
    }


def default_levels(impact: int, probability: int, score: Decimal) -> dict[str, Any]:
    """Inherent and residual equal to current (seeded risks have no reductions), no target,
    the default appetite."""
    severity = severity_for(score).value
    within = DEFAULT_MODEL.within_appetite(score)
    return {
        "inherent_impact": impact,
        "inherent_probability": probability,
        "inherent_score": score,
        "inherent_severity": severity,
        "residual_impact": impact,
        "residual_probability": probability,
        "residual_score": score,
        "residual_severity": severity,
        "target_impact": None,
        "target_probability": None,
        "target_score": None,
        "target_severity": None,
        "within_appetite": within,
        "residual_within_appetite": within,
    }


def risk_rows(
    rng: random.Random,
    *,
    tenant_id: uuid.UUID,
    owners: Sequence[uuid.UUID],
    assets: Sequence[AssetRef],
    count: int,
    span_days: int,
    now: datetime,
    start_number: int = 1,
    deleted_share: float = 0.02,
) -> Rows:
    """``count`` risks created over the last ``span_days`` days, each with its history."""
    rows = Rows()
    statuses = [s for s, _ in STATUS_WEIGHTS]
    weights = [w for _, w in STATUS_WEIGHTS]
    for n in range(start_number, start_number + count):
        risk_id = uuid.uuid4()
        title_tpl, tags, description_tpl = rng.choice(THREATS)
        links = rng.choices((0, 1, 2, 3), (20, 45, 25, 10))[0]
        linked = rng.sample(assets, k=min(len(assets), links)) if links else []
        words = {
            "asset": linked[0].name if linked else rng.choice(ASSETS)[0],
            "team": rng.choice(TEAMS),
            "vendor": rng.choice(VENDORS),
            "data": rng.choice(DATA),
            "process": rng.choice(PROCESSES),
        }
        title = title_tpl.format(**words)
        description = description_tpl.format(**words)
        crits = [a.criticality for a in linked]
        impact, probability = _level(rng), _level(rng)
        status = rng.choices(statuses, weights)[0]
        owner = rng.choice(owners)
        created = now - timedelta(days=rng.random() ** 1.3 * span_days)
        # the story: CREATE (maybe with other levels, maybe as a draft), then changes
        first_impact = min(5, max(1, impact + rng.choice((0, 0, 0, -1, 1))))
        first_status = (
            RiskStatus.DRAFT.value
            if status == RiskStatus.DRAFT or rng.random() < 0.5
            else RiskStatus.ACTIVE.value
        )
        score = compute_score(first_impact, probability, crits)
        moments = sorted(_between(rng, created, now) for _ in range(3))
        history = [
            _history(
                tenant_id,
                risk_id,
                HistoryAction.CREATE,
                impact=first_impact,
                probability=probability,
                score=score,
                status=first_status,
                prev_score=None,
                prev_status=None,
                changed_by=owner,
                changes={"title": {"before": None, "after": title}},
                at=created,
            )
        ]
        current_status, current_impact, step = first_status, first_impact, 0
        if first_impact != impact:
            new_score = compute_score(impact, probability, crits)
            history.append(
                _history(
                    tenant_id,
                    risk_id,
                    HistoryAction.UPDATE,
                    impact=impact,
                    probability=probability,
                    score=new_score,
                    status=current_status,
                    prev_score=score,
                    prev_status=current_status,
                    changed_by=owner,
                    changes={
                        "impact": {"before": first_impact, "after": impact},
                        "score": {"before": float(score), "after": float(new_score)},
                    },
                    at=moments[step],
                )
            )
            score, current_impact, step = new_score, impact, step + 1
        path = []
        if status != RiskStatus.DRAFT and current_status == RiskStatus.DRAFT:
            path.append(RiskStatus.ACTIVE.value)
        if status not in (RiskStatus.DRAFT, RiskStatus.ACTIVE):
            path.append(status.value)
        for next_status in path:
            history.append(
                _history(
                    tenant_id,
                    risk_id,
                    HistoryAction.STATUS_CHANGE,
                    impact=current_impact,
                    probability=probability,
                    score=score,
                    status=next_status,
                    prev_score=score,
                    prev_status=current_status,
                    changed_by=owner,
                    changes={"status": {"before": current_status, "after": next_status}},
                    at=moments[min(step, 2)],
                )
            )
            current_status, step = next_status, step + 1
        updated = history[-1]["created_at"]
        deleted_at = None
        if rng.random() < deleted_share:
            deleted_at = _between(rng, updated, now)
            history.append(
                _history(
                    tenant_id,
                    risk_id,
                    HistoryAction.DELETE,
                    impact=current_impact,
                    probability=probability,
                    score=score,
                    status=current_status,
                    prev_score=score,
                    prev_status=current_status,
                    changed_by=owner,
                    changes={"deleted_at": {"before": None, "after": deleted_at.isoformat()}},
                    at=deleted_at,
                )
            )
            updated = deleted_at
        frameworks = rng.sample(FRAMEWORKS, k=rng.choices((0, 1, 2), (25, 50, 25))[0])
        custom: dict[str, Any] = {"business_unit": rng.choice(BUSINESS_UNITS)}
        if rng.random() < 0.6:
            custom["annual_loss_eur"] = rng.randrange(5, 500) * 1000
        review_on = (now + timedelta(days=rng.randint(-30, 180))).date()
        severity = severity_for(score).value
        rows.risks.append(
            {
                "id": risk_id,
                "tenant_id": tenant_id,
                "title": title,
                "description": description,
                "impact": current_impact,
                "probability": probability,
                "score": score,
                "severity": severity_for(score).value,
                **default_levels(current_impact, probability, score),
                "next_review_date": min(
                    review_on,
                    created.date() + timedelta(days=DEFAULT_MODEL.days_between_reviews(severity)),
                ),
                "status": current_status,
                "treatment": _treatment(rng, current_status),
                "owner_id": owner,
                "tags": list(tags),
                "frameworks": frameworks,
                "source": rng.choices(("MANUAL", "IMPORT", "CONNECTOR"), (80, 15, 5))[0],
                "external_id": f"RISK-{n:06d}",
                "review_date": review_on,
                "custom_fields": custom,
                "version": len(history),
                "created_by": owner,
                "deleted_at": deleted_at,
                "created_at": created,
                "updated_at": updated,
            }
        )
        if deleted_at is None:
            rows.labels.extend(labels.rows_for(tenant_id, risk_id, tags, frameworks, custom))
        rows.links.extend(
            {"risk_id": risk_id, "asset_id": a.id, "tenant_id": tenant_id} for a in linked
        )
        rows.history.extend(history)
        _mitigations(
            rng, rows, tenant_id, risk_id, current_status, owners, created, now, deleted_at
        )
    return rows


def _treatment(rng: random.Random, status: str) -> str:
    if status == RiskStatus.ACCEPTED:
        return "ACCEPT"
    return rng.choices(("MITIGATE", "TRANSFER", "AVOID", "ACCEPT"), (75, 10, 8, 7))[0]


def _mitigations(
    rng: random.Random,
    rows: Rows,
    tenant_id: uuid.UUID,
    risk_id: uuid.UUID,
    status: str,
    owners: Sequence[uuid.UUID],
    created: datetime,
    now: datetime,
    deleted_at: datetime | None,
) -> None:
    if status == RiskStatus.DRAFT:
        return
    count = rng.choices((0, 1, 2, 3), (35, 35, 20, 10))[0]
    for title in rng.sample(MITIGATIONS, k=count):
        mitigation_id = uuid.uuid4()
        if status in (RiskStatus.MITIGATED, RiskStatus.CLOSED):
            m_status = rng.choices(("DONE", "CANCELLED"), (90, 10))[0]
        else:
            m_status = rng.choices(("PLANNED", "IN_PROGRESS", "DONE"), (45, 40, 15))[0]
        subs = rng.sample(SUB_ACTIONS, k=rng.choice((0, 2, 3, 4)))
        done = (
            len(subs)
            if m_status == "DONE"
            else (rng.randint(0, max(len(subs) - 1, 0)) if m_status == "IN_PROGRESS" else 0)
        )
        progress = (
            round(100 * done / len(subs))
            if subs
            else (100 if m_status == "DONE" else rng.choice((0, 10, 25, 50)))
        )
        m_created = _between(rng, created, now)
        rows.mitigations.append(
            {
                "id": mitigation_id,
                "tenant_id": tenant_id,
                "risk_id": risk_id,
                "title": title,
                "description": f"{title}. Tracked in the security programme.",
                "assignee_id": rng.choice(owners),
                "status": m_status,
                "progress": progress,
                "due_date": (now + timedelta(days=rng.randint(-45, 120))).date(),
                "cost": rng.randint(1, 3),
                "effort_days": rng.choice((1, 2, 3, 5, 10, 20, 40)),
                "created_by": rng.choice(owners),
                "deleted_at": deleted_at,
                "created_at": m_created,
                "updated_at": m_created,
            }
        )
        rows.sub_actions.extend(
            {
                "id": uuid.uuid4(),
                "tenant_id": tenant_id,
                "mitigation_id": mitigation_id,
                "title": sub,
                "completed": i < done,
                "position": i,
                "created_at": m_created,
            }
            for i, sub in enumerate(subs)
        )


# --------------------------------------------------------------------------- writing

_TABLES: tuple[tuple[str, Any], ...] = (
    ("risks", Risk),
    ("links", RiskAsset),
    ("history", RiskHistory),
    ("mitigations", Mitigation),
    ("sub_actions", SubAction),
    ("labels", RiskLabel),
)


write_rows = insert_rows


async def write(session: AsyncSession, rows: Rows) -> None:
    for attribute, model in _TABLES:
        await write_rows(session, model.__table__, getattr(rows, attribute))


async def _fast_bulk_load(session: AsyncSession) -> bool:
    """PostgreSQL, for this transaction only: skip per-row FK trigger checks (the generated
    rows are consistent by construction) when the role may, and defer GIN maintenance.
    True when the row triggers are off (then the search documents are filled afterwards)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    await session.execute(text("SET LOCAL gin_pending_list_limit = '32MB'"))
    await session.execute(text("SET LOCAL synchronous_commit = off"))
    try:
        async with session.begin_nested():
            await session.execute(text("SET LOCAL session_replication_role = replica"))
    except DBAPIError:
        log.info("not allowed to set session_replication_role; FK checks stay on")
        return False
    return True


async def populate(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    owners: Sequence[uuid.UUID],
    risks: int,
    span_days: int,
    assets: int = len(ASSETS),
    seed: int | None = None,
    batch: int = 5_000,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Fill a tenant's register (no commit): assets, custom fields, risks with history and
    mitigations, then the daily aggregates rebuilt from the history.

    The next batch is generated in a worker thread while the current one is being written.
    """
    triggers_off = await _fast_bulk_load(session)
    rng = random.Random(seed)
    now = now_utc()
    assets_ = asset_rows(rng, tenant_id=tenant_id, count=assets, now=now)
    await write_rows(session, cast(Table, Asset.__table__), assets_)
    await write_rows(session, cast(Table, CustomField.__table__), custom_field_rows(tenant_id, now))
    refs = [AssetRef(a["id"], a["criticality"], a["name"]) for a in assets_]
    sizes = [min(batch, risks - start) for start in range(0, risks, batch)]

    def generate(index: int) -> Rows:
        return risk_rows(
            rng,
            tenant_id=tenant_id,
            owners=owners,
            assets=refs,
            count=sizes[index],
            span_days=span_days,
            now=now,
            start_number=index * batch + 1,
        )

    pending = asyncio.create_task(asyncio.to_thread(generate, 0)) if sizes else None
    for index in range(len(sizes)):
        assert pending is not None
        rows = await pending
        if index + 1 < len(sizes):
            pending = asyncio.create_task(asyncio.to_thread(generate, index + 1))
        await write(session, rows)
        if on_progress is not None:
            on_progress(len(rows))
    if triggers_off:  # else the search trigger has indexed every risk as it was written
        await _index_for_search(session, tenant_id)
    await rebuild_daily_stats(session, tenant_ids=[tenant_id])
    await rollups.rebuild(session, tenant_ids=[tenant_id])


# the trigger of migration 0003 computes the same document row by row
_PG_SEARCH_FILL = text(
    """
    INSERT INTO risk_search (risk_id, tenant_id, document)
    SELECT id, tenant_id,
           setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
           setweight(to_tsvector('english', coalesce(description, '')), 'B')
    FROM risks WHERE tenant_id = :tenant_id AND deleted_at IS NULL
    ON CONFLICT (risk_id) DO NOTHING
    """
)


async def _index_for_search(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """PostgreSQL: fill ``risk_search`` in one statement (row triggers are off during the bulk
    load when the role may turn them off; SQLite's FTS triggers always run)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_PG_SEARCH_FILL, {"tenant_id": tenant_id})
