"""Writing many risks in a few statements (imports, creates): set-based SQL, no ORM flush.

A batch of new risks is one multi-row INSERT per table (risks, labels, asset links, history,
audit) and one upsert per aggregate; a batch of updates is one ``UPDATE … FROM`` a staging table
on PostgreSQL (guarded by the version that was read), one DELETE and one INSERT of the changed
risks' labels and asset links, then the same history, aggregate and audit statements. The
statements name the tables' columns, so a column added to ``risks`` is written by adding it to
``risk_row`` / ``UPDATABLE``. The rows are plain INSERT/UPDATE statements, which the row-level
security policies check like any other write (COPY is refused under RLS for the app role).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from sqlalchemy import Table, bindparam, delete, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.sql.elements import ColumnElement

from openrisk.audit.service import audit_rows, insert_audit_rows
from openrisk.core.context import RequestContext
from openrisk.core.db.bulk import RawJson, among, insert_rows, stage_rows
from openrisk.core.errors import PreconditionFailed
from openrisk.risks import history, labels
from openrisk.risks.common import dialect_name
from openrisk.risks.models import Risk, RiskAsset, RiskLabel

RISKS = cast(Table, Risk.__table__)
LINKS = cast(Table, RiskAsset.__table__)
LABELS = cast(Table, RiskLabel.__table__)
COLUMNS = tuple(c.name for c in RISKS.columns)
# the levels other than current, derived with it (methodology.levels)
LEVEL_COLUMNS = (
    "inherent_impact",
    "inherent_probability",
    "inherent_score",
    "inherent_severity",
    "residual_impact",
    "residual_probability",
    "residual_score",
    "residual_severity",
    "target_impact",
    "target_probability",
    "target_score",
    "target_severity",
    "within_appetite",
    "residual_within_appetite",
    "next_review_date",
)
# the risk's own values that a person sets or sees change (history and audit rows diff them)
EDITABLE = (
    "title",
    "description",
    "impact",
    "probability",
    "score",
    "severity",
    "status",
    "treatment",
    "owner_id",
    "tags",
    "frameworks",
    "custom_fields",
    "review_date",
    "external_id",
)
# what an update may change (besides the version, which it increments)
UPDATABLE = (*EDITABLE, "updated_at", *LEVEL_COLUMNS)
CHANGED_MEANWHILE = "A risk of the file was changed meanwhile; nothing was imported. Retry."


def tenant_guard(tenant_id: Any) -> ColumnElement[bool]:
    """``risks.tenant_id = tenant_id``, written so that no index can serve it: a statement that
    also names the risk's id then always finds it by the primary key. (Written as ``=``, the
    tenant's partial indexes look as cheap as the primary key to PostgreSQL's planner whenever
    its statistics lag behind a large import, and scanning all of the tenant's index entries
    for each row made one UPDATE of an imported row cost ~30 ms instead of ~0.1 ms.)"""
    return RISKS.c.tenant_id.is_not_distinct_from(tenant_id)


_RISK_CLASS = manager_of_class(Risk)


def transient(values: Mapping[Any, Any]) -> Risk:
    """A Risk holding ``values`` (columns unset read as None), built without the ORM's
    per-attribute bookkeeping (ten times cheaper than ``Risk(**values)``, which an import pays
    per row). For risks that the batch statements here write, never the session."""
    risk: Risk = _RISK_CLASS.new_instance()
    risk.__dict__.update(values)
    return risk


def risk_row(risk: Risk) -> dict[str, Any]:
    """The ``risks`` row of a risk built in memory (every column; unset ones are NULL)."""
    values = risk.__dict__
    return {name: values.get(name) for name in COLUMNS}


def link_rows(tenant_id: uuid.UUID, links: Mapping[uuid.UUID, Sequence[uuid.UUID]]) -> list[Any]:
    return [
        {"risk_id": risk_id, "asset_id": asset_id, "tenant_id": tenant_id}
        for risk_id, asset_ids in links.items()
        for asset_id in asset_ids
    ]


@dataclass
class Changed:
    """An update of one risk, applied in memory: ``risk`` holds the new values and version."""

    risk: Risk
    read_version: int
    before: dict[str, Any]
    changes: dict[str, Any]
    asset_ids: list[uuid.UUID]
    relink: bool
    # the risk's labels (``labels.pairs_for``) before the update, when the caller read them:
    # then only the labels that moved are written, else all of the risk's are replaced
    labels_before: list[tuple[str, str]] | None = None
    # the columns whose values the update changed, when the caller compared them (else every
    # column of ``UPDATABLE`` is written)
    moved: Sequence[str] | None = None


_UPDATE = (
    update(RISKS)
    .where(
        RISKS.c.id == bindparam("b_id"),
        tenant_guard(bindparam("b_tenant_id")),
        RISKS.c.version == bindparam("b_read_version"),
        RISKS.c.deleted_at.is_(None),
    )
    .values(
        {name: bindparam(f"v_{name}", type_=RISKS.c[name].type) for name in UPDATABLE}
        | {"version": bindparam("v_version", type_=RISKS.c.version.type)}
    )
)


async def update_risks(
    session: AsyncSession,
    changed: Sequence[Changed],
    *,
    staged: tuple[tuple[str, ...], Sequence[dict[str, Any]]] | None = None,
) -> None:
    """The new values of the risks, each found by its primary key and guarded by the version
    that was read; a row changed since it was read (by anyone else) is a 412 for the whole
    batch. PostgreSQL: the rows' moved columns are COPYed into a staging table and written
    by one ``UPDATE … FROM`` (the statement-level triggers on ``risks`` then run once per
    batch, not once per row); SQLite: one UPDATE statement executed for every row.
    ``staged``: the columns and rows of ``stage`` when the caller built them already."""
    if not changed:
        return
    if dialect_name(session) == "postgresql":
        columns, rows = staged if staged is not None else stage(changed)
        count = await _update_staged(session, rows, columns)
    else:
        params = [
            {
                "b_id": c.risk.id,
                "b_tenant_id": c.risk.tenant_id,
                "b_read_version": c.read_version,
                "v_version": c.risk.version,
                **{f"v_{name}": getattr(c.risk, name) for name in UPDATABLE},
            }
            for c in changed
        ]
        result = cast(CursorResult[Any], await session.execute(_UPDATE, params))
        sane = session.get_bind().dialect.supports_sane_multi_rowcount or len(params) == 1
        count = result.rowcount if sane else len(params)
    if count != len(changed):
        raise PreconditionFailed(CHANGED_MEANWHILE)


_STAGE = "openrisk_update_risks"
STAGED_UPDATES = 1_000


def staged_columns(changed: Sequence[Changed]) -> tuple[str, ...]:
    """The columns of ``UPDATABLE`` that a batch writes: those that any of its risks moved
    (all of them when a change does not say), and the update time. A file that retitles its
    risks stages four values a row instead of thirty."""
    if any(c.moved is None for c in changed):
        return UPDATABLE
    wanted = {"updated_at"}.union(*(c.moved for c in changed if c.moved is not None))
    return tuple(name for name in UPDATABLE if name in wanted)


def stage(changed: Sequence[Changed]) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """The columns that the changes stage and their rows of the staging table."""
    columns = staged_columns(changed)
    return columns, [staged_row(c, columns) for c in changed]


@functools.cache
def _staged_update(columns: tuple[str, ...]) -> tuple[str, str]:
    """The staging table for rows of these columns (one per set of columns, dropped at the
    commit) and the ``UPDATE … FROM`` it that writes them."""
    mask = sum(1 << UPDATABLE.index(name) for name in columns)
    stage = f"{_STAGE}_{mask:x}"
    assigned = ", ".join(f"{name} = s.{name}" for name in (*columns, "version"))
    return stage, (
        f'UPDATE risks AS r SET {assigned} FROM "{stage}" AS s '
        "WHERE r.id = s.id AND r.tenant_id IS NOT DISTINCT FROM s.tenant_id "
        "AND r.version = s.read_version AND r.deleted_at IS NULL"
    )


def staged_row(c: Changed, columns: Sequence[str] = UPDATABLE) -> dict[str, Any]:
    """A changed risk's row of the staging table: its new values and the version read."""
    values = c.risk.__dict__
    row = {"id": c.risk.id, "tenant_id": c.risk.tenant_id, "version": c.risk.version}
    row.update({name: values.get(name) for name in columns})
    row["read_version"] = c.read_version
    return row


async def _update_staged(
    session: AsyncSession, rows: Sequence[dict[str, Any]], columns: tuple[str, ...]
) -> int:
    """``UPDATE … FROM`` the staged rows, ``STAGED_UPDATES`` at a time; how many rows were
    updated. (The tenant is compared with ``IS NOT DISTINCT FROM`` for the reason
    ``tenant_guard`` gives; at this size the planner joins each staged row to ``risks`` by its
    primary key, where a larger stage could make it scan the whole table for a hash join.)"""
    stage, statement = _staged_update(columns)
    count = 0
    for start in range(0, len(rows), STAGED_UPDATES):
        status = await stage_rows(
            session,
            RISKS,
            rows[start : start + STAGED_UPDATES],
            stage=stage,
            statement=statement,
            extra={"read_version": "version"},
        )
        count += int(status.rsplit(" ", 1)[-1])
    return count


# the columns that labels are made of (``risks.labels``)
LABELLED = frozenset({"tags", "frameworks", "custom_fields"})


@dataclass
class UpdatedRows:
    """What updates of risks write besides the risks themselves, built in memory (no
    database): the changed risks' new labels and asset links, one history and audit row each."""

    changed: list[Changed] = field(default_factory=list)
    tenant_id: uuid.UUID | None = None
    relabeled: list[uuid.UUID] = field(default_factory=list)  # every label replaced
    unlabeled: list[tuple[uuid.UUID, str, str]] = field(default_factory=list)  # labels gone
    labels: list[dict[str, Any]] = field(default_factory=list)  # labels to insert
    relinked: list[uuid.UUID] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    entries: list[history.HistoryEntry] = field(default_factory=list)  # their history
    history_rows: list[dict[str, Any]] = field(default_factory=list)
    audit_rows: list[dict[str, Any]] = field(default_factory=list)
    # the staged columns and rows of the risks' new values (``finish``)
    staged: tuple[tuple[str, ...], list[dict[str, Any]]] | None = None

    def add(self, context: RequestContext, changed: Sequence[Changed], *, action: str) -> None:
        """Build every row the updates write, so the writer only sends them."""
        audited: list[tuple[uuid.UUID, RawJson]] = []
        self.tenant_id = context.tenant_id
        for c in changed:
            self.changed.append(c)
            if not LABELLED.isdisjoint(c.changes):
                if c.labels_before is None:
                    self.relabeled.append(c.risk.id)
                    self.labels += labels.rows_of(c.risk)
                else:
                    risk = c.risk
                    after = labels.pairs_for(risk.tags, risk.frameworks, risk.custom_fields)
                    gone, added = labels.moved(context.tenant_id, risk.id, c.labels_before, after)
                    self.unlabeled += gone
                    self.labels += added
            if c.relink:
                self.relinked.append(c.risk.id)
                self.links += link_rows(context.tenant_id, {c.risk.id: c.asset_ids})
            encoded = RawJson(orjson.dumps(c.changes))  # shared by the history and audit row
            entry = history.change_entry(
                c.risk,
                before=c.before,
                changes=c.changes,
                changed_by=context.user_id,
                at=c.risk.updated_at,
                encoded=encoded,
            )
            self.entries.append(entry)
            self.history_rows.append(entry.row())
            audited.append((c.risk.id, encoded))
        self.audit_rows += audit_rows(
            context=context, action=action, resource_type="risk", items=audited
        )

    def finish(self) -> None:
        """Stage the risks' new values once every change of the batch is in (the columns
        staged are those that any of them moved)."""
        self.staged = stage(self.changed)


async def write_updated(session: AsyncSession, *, rows: UpdatedRows) -> None:
    """Write updates built by ``UpdatedRows.add`` (a 412 when a risk changed meanwhile)."""
    if not rows.changed:
        return
    await update_risks(session, rows.changed, staged=rows.staged)
    await labels.remove(session, rows.relabeled)
    if rows.unlabeled:
        assert rows.tenant_id is not None
        await labels.remove_pairs(session, tenant_id=rows.tenant_id, rows=rows.unlabeled)
    await insert_rows(session, LABELS, rows.labels)
    if rows.relinked:
        await session.execute(
            delete(RiskAsset)
            .where(among(session, RiskAsset.risk_id, rows.relinked))
            .execution_options(synchronize_session=False)  # no link of theirs is loaded
        )
        await insert_rows(session, LINKS, rows.links)
    await history.append(session, rows.entries, rows=rows.history_rows)
    await insert_audit_rows(session, rows.audit_rows)
