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
from bisect import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import accumulate
from typing import Any, cast

import orjson
from asyncpg.pgproto.pgproto import UUID as _UUID  # type: ignore[import-untyped]
from sqlalchemy import Table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.assets.models import Asset
from openrisk.core.db.bulk import insert_records, insert_rows
from openrisk.custom_fields.models import CustomField
from openrisk.mitigations.models import Mitigation, SubAction
from openrisk.risks import labels, rollups
from openrisk.risks.batch import LEVEL_COLUMNS
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

log = logging.getLogger(__name__)

# final status of a risk: (status, weight)
STATUS_WEIGHTS = (
    (RiskStatus.DRAFT, 8),
    (RiskStatus.ACTIVE, 45),
    (RiskStatus.MITIGATED, 22),
    (RiskStatus.ACCEPTED, 10),
    (RiskStatus.CLOSED, 15),
)
LEVEL_WEIGHTS = (6, 17, 30, 28, 19)  # 1..5: all severities appear, mostly MEDIUM/HIGH

# Column orders of the generated records (every column without a server default).
RISK_COLUMNS = (
    "id",
    "tenant_id",
    "title",
    "description",
    "impact",
    "probability",
    "score",
    "severity",
    *LEVEL_COLUMNS,
    "status",
    "treatment",
    "owner_id",
    "tags",
    "frameworks",
    "source",
    "external_id",
    "review_date",
    "custom_fields",
    "version",
    "created_by",
    "deleted_at",
    "created_at",
    "updated_at",
)
LINK_COLUMNS = ("risk_id", "asset_id", "tenant_id")
HISTORY_COLUMNS = (
    "id",
    "tenant_id",
    "risk_id",
    "action",
    "impact",
    "probability",
    "score",
    "severity",
    "status",
    "prev_score",
    "prev_status",
    "changed_by",
    "changes",
    "created_at",
)
MITIGATION_COLUMNS = (
    "id",
    "tenant_id",
    "risk_id",
    "title",
    "description",
    "assignee_id",
    "status",
    "progress",
    "due_date",
    "cost",
    "effort_days",
    "created_by",
    "deleted_at",
    "created_at",
    "updated_at",
)
SUB_ACTION_COLUMNS = (
    "id",
    "tenant_id",
    "mitigation_id",
    "title",
    "completed",
    "position",
    "created_at",
)
LABEL_COLUMNS = ("tenant_id", "kind", "value", "risk_id")

Record = tuple[Any, ...]


@dataclass
class Rows:
    """Records of one batch, by table, in the column orders above, ready for a bulk write."""

    risks: list[Record] = field(default_factory=list)
    links: list[Record] = field(default_factory=list)
    history: list[Record] = field(default_factory=list)
    mitigations: list[Record] = field(default_factory=list)
    sub_actions: list[Record] = field(default_factory=list)
    labels: list[Record] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.risks)


@dataclass(frozen=True)
class AssetRef:
    id: uuid.UUID
    criticality: str
    name: str


class Ids:
    """Ids that grow in the order they are made (UUID version 7: the time in milliseconds, then
    a counter and random bits), so that a bulk load appends to every primary key and to the
    indexes that lead with a risk id instead of writing all over them."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
        self._base = (millis << 80) | (7 << 76) | (rng.getrandbits(12) << 64) | (2 << 62)
        self._bits = rng.getrandbits
        self._count = 0

    def __call__(self) -> uuid.UUID:
        self._count += 1
        value = (self._base | (self._count << 30) | self._bits(30)).to_bytes(16, "big")
        return cast(uuid.UUID, _UUID(value))


def _fast_uuid(value: uuid.UUID) -> uuid.UUID:
    """The same id as the driver's own UUID type, which COPY writes without a conversion."""
    return cast(uuid.UUID, _UUID(value.bytes))


def _sample(random_: Callable[[], float], population: Sequence[Any], k: int) -> list[Any]:
    """``rng.sample`` for the small draws of the generator (without its per-call checks)."""
    size = len(population)
    if k > size:
        raise ValueError("sample larger than population")
    if k * 4 < size:  # few of many: draw again on a repeat
        chosen: dict[int, None] = {}
        while len(chosen) < k:
            chosen[int(random_() * size)] = None
        return [population[i] for i in chosen]
    pool = list(population)
    for i in range(k):
        j = i + int(random_() * (size - i))
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:k]


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


def creation_times(
    rng: random.Random, *, count: int, span_days: int, now: datetime
) -> list[datetime]:
    """When each of ``count`` risks was created over the last ``span_days`` days (more of them
    lately), oldest first: risks are written in that order, so the creation-time indexes grow
    at their end."""
    return sorted(now - timedelta(days=rng.random() ** 1.3 * span_days) for _ in range(count))


class _Pick:
    """``rng.choices(values, weights)[0]`` with the cumulative weights computed once."""

    def __init__(self, rng: random.Random, values: Sequence[Any], weights: Sequence[int]):
        self._values = tuple(values)
        self._cumulative = list(accumulate(weights))
        self._total = float(self._cumulative[-1])
        self._random = rng.random

    def __call__(self) -> Any:
        return self._values[bisect(self._cumulative, self._random() * self._total)]


@dataclass(frozen=True)
class _Scored:
    score: Decimal
    severity: str
    within: bool
    review_days: int


@lru_cache(maxsize=4096)
def _scored(impact: int, probability: int, criticalities: tuple[str, ...]) -> _Scored:
    score = compute_score(impact, probability, criticalities)
    severity = severity_for(score).value
    return _Scored(
        score,
        severity,
        DEFAULT_MODEL.within_appetite(score),
        DEFAULT_MODEL.days_between_reviews(severity),
    )


@lru_cache(maxsize=1024)
def _json_list(values: tuple[str, ...]) -> str:
    return orjson.dumps(list(values)).decode()


_DRAFT = RiskStatus.DRAFT.value
_ACTIVE = RiskStatus.ACTIVE.value
_CREATE = HistoryAction.CREATE.value
_UPDATE = HistoryAction.UPDATE.value
_STATUS_CHANGE = HistoryAction.STATUS_CHANGE.value
_DELETE = HistoryAction.DELETE.value
_CLOSED_STATES = (RiskStatus.MITIGATED.value, RiskStatus.CLOSED.value)


def risk_rows(
    rng: random.Random,
    *,
    tenant_id: uuid.UUID,
    owners: Sequence[uuid.UUID],
    assets: Sequence[AssetRef],
    created: Sequence[datetime],
    now: datetime,
    ids: Ids,
    start_number: int = 1,
    deleted_share: float = 0.02,
) -> Rows:
    """A risk per creation time in ``created``, each with its history, labels, asset links and
    mitigations: a coherent story (CREATE, maybe with other levels or as a draft, then a
    re-scoring and status changes at later times) whose last row is the risk's current state."""
    rows = Rows()
    random_ = rng.random

    def choice(values: Sequence[Any]) -> Any:
        return values[int(random_() * len(values))]

    def sample(values: Sequence[Any], k: int) -> list[Any]:
        return _sample(random_, values, k)

    tenant_id = _fast_uuid(tenant_id)
    owners = [_fast_uuid(o) for o in owners]
    assets = [AssetRef(_fast_uuid(a.id), a.criticality, a.name) for a in assets]
    status_of = _Pick(rng, [s.value for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS])
    level = _Pick(rng, range(1, 6), LEVEL_WEIGHTS)
    link_count = _Pick(rng, (0, 1, 2, 3), (20, 45, 25, 10))
    framework_count = _Pick(rng, (0, 1, 2), (25, 50, 25))
    source = _Pick(rng, ("MANUAL", "IMPORT", "CONNECTOR"), (80, 15, 5))
    treatment = _Pick(rng, ("MITIGATE", "TRANSFER", "AVOID", "ACCEPT"), (75, 10, 8, 7))
    mitigations = _Mitigations(rng, rows, tenant_id, owners, now, ids)
    threats = [(title, _json_list(tags), tags, text) for title, tags, text in THREATS]
    history = rows.history
    for n, created_at in enumerate(created, start=start_number):
        risk_id = ids()
        title_tpl, tags_json, tags, description_tpl = choice(threats)
        links = link_count()
        linked = sample(assets, k=min(len(assets), links)) if links else []
        words = {
            "asset": linked[0].name if linked else choice(ASSETS)[0],
            "team": choice(TEAMS),
            "vendor": choice(VENDORS),
            "data": choice(DATA),
            "process": choice(PROCESSES),
        }
        title = title_tpl.format(**words)
        description = description_tpl.format(**words)
        crits = tuple(a.criticality for a in linked)
        impact, probability = level(), level()
        status = status_of()
        owner = choice(owners)
        first_impact = min(5, max(1, impact + choice((0, 0, 0, -1, 1))))
        first_status = _DRAFT if status == _DRAFT or random_() < 0.5 else _ACTIVE
        scored = _scored(first_impact, probability, crits)
        span = now - created_at
        moments = sorted([created_at + span * random_() for _ in range(3)])
        title_change = {"title": {"before": None, "after": title}}
        history.append(
            (
                ids(),
                tenant_id,
                risk_id,
                _CREATE,
                first_impact,
                probability,
                scored.score,
                scored.severity,
                first_status,
                None,
                None,
                owner,
                orjson.dumps(title_change).decode(),
                created_at,
            )
        )
        version, updated = 1, created_at
        current_status, current_impact, step = first_status, first_impact, 0
        if first_impact != impact:
            rescored = _scored(impact, probability, crits)
            change = {
                "impact": {"before": first_impact, "after": impact},
                "score": {"before": float(scored.score), "after": float(rescored.score)},
            }
            updated = moments[step]
            history.append(
                (
                    ids(),
                    tenant_id,
                    risk_id,
                    _UPDATE,
                    impact,
                    probability,
                    rescored.score,
                    rescored.severity,
                    current_status,
                    scored.score,
                    current_status,
                    owner,
                    orjson.dumps(change).decode(),
                    updated,
                )
            )
            scored, current_impact, step, version = rescored, impact, step + 1, version + 1
        path = []
        if status != _DRAFT and current_status == _DRAFT:
            path.append(_ACTIVE)
        if status not in (_DRAFT, _ACTIVE):
            path.append(status)
        for next_status in path:
            updated = moments[min(step, 2)]
            change = {"status": {"before": current_status, "after": next_status}}
            history.append(
                (
                    ids(),
                    tenant_id,
                    risk_id,
                    _STATUS_CHANGE,
                    current_impact,
                    probability,
                    scored.score,
                    scored.severity,
                    next_status,
                    scored.score,
                    current_status,
                    owner,
                    orjson.dumps(change).decode(),
                    updated,
                )
            )
            current_status, step, version = next_status, step + 1, version + 1
        deleted_at = None
        if random_() < deleted_share:
            deleted_at = updated + (now - updated) * random_() if now > updated else updated
            change = {"deleted_at": {"before": None, "after": deleted_at.isoformat()}}
            history.append(
                (
                    ids(),
                    tenant_id,
                    risk_id,
                    _DELETE,
                    current_impact,
                    probability,
                    scored.score,
                    scored.severity,
                    current_status,
                    scored.score,
                    current_status,
                    owner,
                    orjson.dumps(change).decode(),
                    deleted_at,
                )
            )
            updated, version = deleted_at, version + 1
        frameworks = tuple(sample(FRAMEWORKS, k=framework_count()))
        custom: dict[str, Any] = {"business_unit": choice(BUSINESS_UNITS)}
        if random_() < 0.6:
            custom["annual_loss_eur"] = (5 + int(random_() * 495)) * 1000
        review_on = (now + timedelta(days=-30 + int(random_() * 211))).date()
        score, severity, within = scored.score, scored.severity, scored.within
        rows.risks.append(
            (
                risk_id,
                tenant_id,
                title,
                description,
                current_impact,
                probability,
                score,
                severity,
                # inherent and residual equal current (seeded risks have no reductions),
                # no target, the default appetite
                current_impact,
                probability,
                score,
                severity,
                current_impact,
                probability,
                score,
                severity,
                None,
                None,
                None,
                None,
                within,
                within,
                min(review_on, created_at.date() + timedelta(days=scored.review_days)),
                current_status,
                "ACCEPT" if current_status == RiskStatus.ACCEPTED.value else treatment(),
                owner,
                tags_json,
                _json_list(frameworks),
                source(),
                f"RISK-{n:06d}",
                review_on,
                orjson.dumps(custom).decode(),
                version,
                owner,
                deleted_at,
                created_at,
                updated,
            )
        )
        if deleted_at is None:
            rows.labels.extend(
                (tenant_id, kind, value, risk_id)
                for kind, value in labels.pairs_for(tags, frameworks, custom)
            )
        rows.links.extend((risk_id, a.id, tenant_id) for a in linked)
        if current_status != _DRAFT:
            mitigations.add(risk_id, current_status, created_at, deleted_at)
    return rows


class _Mitigations:
    """The mitigations (and their sub-actions) of the risks of one batch."""

    def __init__(
        self,
        rng: random.Random,
        rows: Rows,
        tenant_id: uuid.UUID,
        owners: Sequence[uuid.UUID],
        now: datetime,
        ids: Ids,
    ) -> None:
        self.rng, self.rows, self.tenant_id, self.owners = rng, rows, tenant_id, owners
        self.now, self.ids = now, ids
        self.count = _Pick(rng, (0, 1, 2, 3), (35, 35, 20, 10))
        self.closed = _Pick(rng, ("DONE", "CANCELLED"), (90, 10))
        self.open = _Pick(rng, ("PLANNED", "IN_PROGRESS", "DONE"), (45, 40, 15))
        self.descriptions = {t: f"{t}. Tracked in the security programme." for t in MITIGATIONS}

    def add(
        self, risk_id: uuid.UUID, status: str, created: datetime, deleted_at: datetime | None
    ) -> None:
        ids, tenant_id, owners, now = self.ids, self.tenant_id, self.owners, self.now
        random_ = self.rng.random

        def choice(values: Sequence[Any]) -> Any:
            return values[int(random_() * len(values))]

        for title in _sample(random_, MITIGATIONS, self.count()):
            mitigation_id = ids()
            m_status = self.closed() if status in _CLOSED_STATES else self.open()
            subs = _sample(random_, SUB_ACTIONS, choice((0, 2, 3, 4)))
            done = (
                len(subs)
                if m_status == "DONE"
                else (int(random_() * len(subs)) if m_status == "IN_PROGRESS" else 0)
            )
            progress = (
                round(100 * done / len(subs))
                if subs
                else (100 if m_status == "DONE" else choice((0, 10, 25, 50)))
            )
            m_created = created + (now - created) * random_() if now > created else created
            self.rows.mitigations.append(
                (
                    mitigation_id,
                    tenant_id,
                    risk_id,
                    title,
                    self.descriptions[title],
                    choice(owners),
                    m_status,
                    progress,
                    (now + timedelta(days=-45 + int(random_() * 166))).date(),
                    1 + int(random_() * 3),
                    choice((1, 2, 3, 5, 10, 20, 40)),
                    choice(owners),
                    deleted_at,
                    m_created,
                    m_created,
                )
            )
            self.rows.sub_actions.extend(
                (ids(), tenant_id, mitigation_id, sub, i < done, i, m_created)
                for i, sub in enumerate(subs)
            )


# --------------------------------------------------------------------------- writing

_TABLES: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("risks", Risk, RISK_COLUMNS),
    ("links", RiskAsset, LINK_COLUMNS),
    ("history", RiskHistory, HISTORY_COLUMNS),
    ("mitigations", Mitigation, MITIGATION_COLUMNS),
    ("sub_actions", SubAction, SUB_ACTION_COLUMNS),
    ("labels", RiskLabel, LABEL_COLUMNS),
)


async def write(session: AsyncSession, rows: Rows) -> None:
    for attribute, model, columns in _TABLES:
        await insert_records(session, model.__table__, columns, getattr(rows, attribute))


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


# Tables whose secondary indexes a seed into an empty register builds after the load: one
# sort per index instead of an index insertion per row (PostgreSQL's advice for bulk loads).
DEFERRED_INDEX_TABLES = (
    "risks",
    "risk_history",
    "risk_labels",
    "risk_assets",
    "mitigations",
    "mitigation_subactions",
    "risk_search",
)
_SECONDARY_INDEXES = text(
    """
    SELECT CAST(i.indexrelid AS regclass)::text, pg_get_indexdef(i.indexrelid)
    FROM pg_index i
    WHERE i.indrelid = CAST(:table AS regclass) AND NOT i.indisunique
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
    ORDER BY 1
    """
)


async def _defer_indexes(session: AsyncSession) -> list[str]:
    """Drop the secondary indexes of the empty tables of ``DEFERRED_INDEX_TABLES`` (only when
    the whole table is empty, a fresh database: the drop locks the table until commit) and
    return the statements that build them again. Needs the tables' owner."""
    definitions: list[str] = []
    for table in DEFERRED_INDEX_TABLES:
        if await session.scalar(text(f'SELECT EXISTS (SELECT FROM "{table}")')):
            continue
        for name, definition in (await session.execute(_SECONDARY_INDEXES, {"table": table})).all():
            await session.execute(text(f"DROP INDEX {name}"))
            definitions.append(definition)
    return definitions


async def _build_indexes(session: AsyncSession, definitions: Sequence[str]) -> None:
    if definitions:
        await session.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    for definition in definitions:
        await session.execute(text(definition))


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
    Into an empty register, as a role that may turn the row triggers off (the tables' owner),
    the secondary indexes are built after the load.
    """
    triggers_off = await _fast_bulk_load(session)
    deferred = await _defer_indexes(session) if triggers_off else []
    rng = random.Random(seed)
    now = now_utc()
    ids = Ids(rng, now)
    assets_ = asset_rows(rng, tenant_id=tenant_id, count=assets, now=now)
    await insert_rows(session, cast(Table, Asset.__table__), assets_)
    await insert_rows(
        session, cast(Table, CustomField.__table__), custom_field_rows(tenant_id, now)
    )
    refs = [AssetRef(a["id"], a["criticality"], a["name"]) for a in assets_]
    created = creation_times(rng, count=risks, span_days=span_days, now=now)
    starts = range(0, risks, batch)

    def generate(index: int) -> Rows:
        start = starts[index]
        return risk_rows(
            rng,
            tenant_id=tenant_id,
            owners=owners,
            assets=refs,
            created=created[start : start + batch],
            now=now,
            ids=ids,
            start_number=start + 1,
        )

    pending = asyncio.create_task(asyncio.to_thread(generate, 0)) if starts else None
    for index in range(len(starts)):
        assert pending is not None
        rows = await pending
        if index + 1 < len(starts):
            pending = asyncio.create_task(asyncio.to_thread(generate, index + 1))
        await write(session, rows)
        if on_progress is not None:
            on_progress(len(rows))
    if triggers_off:  # else the search triggers have indexed every risk as it was written
        await _index_for_search(session, tenant_id)
    await rebuild_daily_stats(session, tenant_ids=[tenant_id])
    await rollups.rebuild(session, tenant_ids=[tenant_id])
    await _build_indexes(session, deferred)


# the search triggers on risks (migration 0034) compute the same document
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
    """PostgreSQL: fill ``risk_search`` in one statement (the triggers are off during the bulk
    load when the role may turn them off; SQLite's FTS triggers always run)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_PG_SEARCH_FILL, {"tenant_id": tenant_id})
