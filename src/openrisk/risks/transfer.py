"""Export (CSV, JSON, XLSX; streamed in batches) and import (CSV, XLSX; dry run, per-row errors).

An exported CSV or XLSX file can be imported back: rows whose ``id`` is a live risk of the
tenant update it (guarded by its ``version`` when present), other rows create new risks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import csv
import io
import uuid
import zipfile
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.assets.models import Asset
from openrisk.audit.service import diff, record
from openrisk.auth.models import User
from openrisk.core.context import RequestContext
from openrisk.core.db.base import utcnow
from openrisk.core.db.bulk import RawJson, among
from openrisk.core.db.engine import Database
from openrisk.core.db.tenancy import bind_session_to_tenant
from openrisk.core.errors import AppError, Conflict, PreconditionFailed, ValidationFailed
from openrisk.core.events import DomainEvent
from openrisk.core.lifecycle import collections_paused
from openrisk.core.spreadsheet import CsvWriter, XlsxStream, unquote
from openrisk.core.uow import UnitOfWork
from openrisk.custom_fields.models import CustomField
from openrisk.custom_fields.values import validate_values
from openrisk.methodology import clock, levels
from openrisk.methodology.store import scoring_for
from openrisk.risks import batch, commands, documents, export_cells, reads
from openrisk.risks.common import dialect_name
from openrisk.risks.enums import RiskSource, RiskStatus, SortField, SortOrder
from openrisk.risks.labels import pairs_for
from openrisk.risks.models import Risk
from openrisk.risks.queries import RiskFilters
from openrisk.risks.schemas import (
    ExportFormat,
    ImportResult,
    ImportRowError,
    RiskCreate,
    RiskUpdate,
)
from openrisk.risks.scoring import ScoringModel

BATCH = 1_000  # risks per exported page (one statement each)
CHUNK = 1_000  # imported rows validated and written together
WRITES_AHEAD = 2  # validated chunks that may wait for the database to write them
MAX_IMPORT_ROWS = 100_000
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES = {
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.json: "application/json",
    ExportFormat.xlsx: XLSX_MEDIA_TYPE,
}
COLUMNS = (
    "id",
    "title",
    "description",
    "impact",
    "probability",
    "score",
    "severity",
    "status",
    "treatment",
    "owner_id",
    "owner_email",
    "tags",
    "frameworks",
    "asset_ids",
    "asset_names",
    "review_date",
    "source",
    "external_id",
    "version",
    "created_at",
    "updated_at",
)
LIST_COLUMNS = ("tags", "frameworks", "asset_ids", "asset_names")
_IMPORTABLE = (
    "title",
    "description",
    "impact",
    "probability",
    "status",
    "treatment",
    "owner_id",
    "tags",
    "frameworks",
    "asset_ids",
    "review_date",
    "external_id",
)


# --------------------------------------------------------------------------- export


@dataclass(frozen=True)
class Labels:
    """What people read instead of ids in a page of the export: owners' emails, asset names."""

    emails: Mapping[uuid.UUID, str] = field(default_factory=dict)
    assets: Mapping[uuid.UUID, str] = field(default_factory=dict)


async def _labels(
    session: AsyncSession, tenant_id: uuid.UUID, items: Sequence[reads.ListedRisk]
) -> Labels:
    """Two queries per page, whatever its size."""
    owner_ids = {i.risk.owner_id for i in items if i.risk.owner_id}
    asset_ids = {a for i in items for a in i.asset_ids}
    emails: dict[uuid.UUID, str] = {}
    names: dict[uuid.UUID, str] = {}
    if owner_ids:
        rows = await session.execute(select(User.id, User.email).where(User.id.in_(owner_ids)))
        emails = dict(rows.tuples().all())
    if asset_ids:
        found = await session.execute(
            select(Asset.id, Asset.name).where(
                Asset.tenant_id == tenant_id, Asset.id.in_(asset_ids)
            )
        )
        names = dict(found.tuples().all())
    return Labels(emails, names)


def _flat(item: reads.ListedRisk, custom_names: Sequence[str], labels: Labels) -> list[Any]:
    """One exported row: the columns of ``COLUMNS`` then the custom fields, as cell values."""
    r = item.risk
    values: list[Any] = [
        str(r.id),
        r.title,
        r.description,
        r.impact,
        r.probability,
        float(r.score),
        r.severity,
        r.status,
        r.treatment,
        str(r.owner_id) if r.owner_id else None,
        labels.emails.get(r.owner_id) if r.owner_id else None,
        ";".join(r.tags),
        ";".join(r.frameworks),
        ";".join(str(a) for a in item.asset_ids),
        ";".join(labels.assets.get(a, str(a)) for a in item.asset_ids),
        r.review_date.isoformat() if r.review_date else None,
        r.source,
        r.external_id,
        r.version,
        r.created_at.isoformat(),
        r.updated_at.isoformat(),
    ]
    custom = r.custom_fields or {}
    for name in custom_names:
        value = custom.get(name)
        values.append(("true" if value else "false") if isinstance(value, bool) else value)
    return values


@contextlib.asynccontextmanager
async def _snapshot(database: Database, tenant_id: uuid.UUID) -> AsyncIterator[_Snapshot]:
    """A session bound to the tenant, in one REPEATABLE READ transaction on PostgreSQL (so every
    page of the export sees the same register), and the tenant's custom field names."""
    async with database.session() as session:
        await bind_session_to_tenant(session, tenant_id)
        if dialect_name(session) == "postgresql":
            snapshot = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
            await session.connection(execution_options=snapshot)
        names = list(
            await session.scalars(
                select(CustomField.name)
                .where(CustomField.tenant_id == tenant_id)
                .order_by(CustomField.name)
            )
        )
        yield _Snapshot(session, names)


@dataclass(frozen=True)
class _Snapshot:
    session: AsyncSession
    custom_names: list[str]


async def _batches(
    database: Database,
    *,
    tenant_id: uuid.UUID,
    filters: RiskFilters,
    sort: SortField,
    order: SortOrder,
    with_labels: bool = True,
) -> AsyncGenerator[tuple[list[str], list[reads.ListedRisk], Labels], None]:
    """The custom field names, then the matching risks in keyset pages of ``BATCH``, all read
    in one snapshot: each page is an index range that starts where the previous one ended, so
    the 100th page costs what the first did, and no statement runs longer than one page."""
    async with _snapshot(database, tenant_id) as snap:
        after: tuple[Any, ...] | None = None
        while True:
            found = await reads.list_risks(
                snap.session,
                tenant_id=tenant_id,
                filters=filters,
                sort=sort,
                order=order,
                limit=BATCH,
                after=after,
                with_total=False,
            )
            labels = (
                await _labels(snap.session, tenant_id, found.items) if with_labels else Labels()
            )
            yield snap.custom_names, found.items, labels
            if found.next_after is None:
                return
            after = found.next_after


async def _cell_batches(
    database: Database,
    *,
    tenant_id: uuid.UUID,
    filters: RiskFilters,
    sort: SortField,
    order: SortOrder,
) -> AsyncGenerator[tuple[list[str], list[Sequence[Any]]], None]:
    """Like ``_batches``, for the CSV export on PostgreSQL: each row as its cells' text."""
    async with _snapshot(database, tenant_id) as snap:
        connection = await snap.session.connection()
        width = len(COLUMNS) + len(snap.custom_names)
        after: Sequence[Any] | None = None
        while True:
            statement = export_cells.page_statement(
                tenant_id=tenant_id,
                filters=filters,
                sort=sort,
                order=order,
                after=after,
                limit=BATCH,
                custom_names=snap.custom_names,
            )
            rows = (await connection.execute(statement)).all()
            yield snap.custom_names, [row[:width] for row in rows[:BATCH]]
            if len(rows) <= BATCH:
                return
            after = tuple(rows[BATCH - 1][width:])


async def export_stream(
    database: Database,
    *,
    tenant_id: uuid.UUID,
    filters: RiskFilters,
    sort: SortField,
    order: SortOrder,
    fmt: ExportFormat,
) -> AsyncGenerator[bytes, None]:
    """The export, chunk by chunk (one per page of ``BATCH`` risks); rows are formatted in a
    worker thread so that other requests keep being served while a large export runs, and the
    next page is read meanwhile, so the database's work overlaps the formatting's."""
    query: dict[str, Any] = {
        "tenant_id": tenant_id,
        "filters": filters,
        "sort": sort,
        "order": order,
    }
    writer: _Export = _EXPORTS[fmt]()
    batches: AsyncGenerator[tuple[Any, ...], None]
    render: Any
    if isinstance(writer, _CsvExport) and database.engine.dialect.name == "postgresql":
        batches, render = _cell_batches(database, **query), writer.cells
    else:
        labelled = not isinstance(writer, _JsonExport)  # JSON shows ids, not names
        batches, render = _batches(database, **query, with_labels=labelled), writer.rows
    first = await asyncio.to_thread(writer.start)
    if first:
        yield first
    pending = asyncio.ensure_future(anext(batches, None))
    try:
        while (batch := await pending) is not None:
            pending = asyncio.ensure_future(anext(batches, None))
            chunk = await asyncio.to_thread(render, *batch)
            if chunk:
                yield chunk
    finally:  # also when the client went away: stop the read ahead, then close the snapshot
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):  # the first error stands
            await pending
        await batches.aclose()
    yield await asyncio.to_thread(writer.finish)


class _Export(Protocol):
    """One export format: its first bytes, a page of rows, its last bytes."""

    def start(self) -> bytes: ...

    def rows(
        self, names: Sequence[str], items: Sequence[reads.ListedRisk], labels: Labels
    ) -> bytes: ...

    def finish(self) -> bytes: ...


class _CsvExport:
    def __init__(self) -> None:
        self._header = False

    def start(self) -> bytes:
        return b""

    def rows(
        self, names: Sequence[str], items: Sequence[reads.ListedRisk], labels: Labels
    ) -> bytes:
        buffer = io.StringIO()
        writer = CsvWriter(buffer)
        if not self._header:
            writer.writerow([*COLUMNS, *(f"cf_{n}" for n in names)])
            self._header = True
        writer.writerows(_flat(item, names, labels) for item in items)
        return buffer.getvalue().encode("utf-8")

    def cells(self, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
        """A page of rows already formatted cell by cell (``export_cells``)."""
        buffer = io.StringIO()
        writer = CsvWriter(buffer)
        if not self._header:
            writer.writerow([*COLUMNS, *(f"cf_{n}" for n in names)])
            self._header = True
        writer.writerows(rows)
        return buffer.getvalue().encode("utf-8")

    def finish(self) -> bytes:
        return b""


class _JsonExport:
    """A JSON array of the risks as the API shows them (``RiskOut``)."""

    def __init__(self) -> None:
        self._empty = True

    def start(self) -> bytes:
        return b"["

    def rows(
        self, names: Sequence[str], items: Sequence[reads.ListedRisk], labels: Labels
    ) -> bytes:
        if not items:
            return b""
        today = clock.today()
        body = documents.dumps([item.document(today=today) for item in items])[1:-1]
        chunk = body if self._empty else b"," + body
        self._empty = False
        return chunk

    def finish(self) -> bytes:
        return b"]"


class _XlsxExport:
    def __init__(self) -> None:
        self._book = XlsxStream("Risks")
        self._header = False

    def start(self) -> bytes:
        return self._book.take()  # the workbook's fixed parts: the download starts now

    def rows(
        self, names: Sequence[str], items: Sequence[reads.ListedRisk], labels: Labels
    ) -> bytes:
        if not self._header:
            self._book.append_rows([[*COLUMNS, *(f"cf_{n}" for n in names)]])
            self._header = True
        self._book.append_rows(_flat(item, names, labels) for item in items)
        return self._book.take()

    def finish(self) -> bytes:
        return self._book.close()


_EXPORTS: dict[ExportFormat, type[_Export]] = {
    ExportFormat.csv: _CsvExport,
    ExportFormat.json: _JsonExport,
    ExportFormat.xlsx: _XlsxExport,
}


# --------------------------------------------------------------------------- import


def _file_error(message: str) -> ValidationFailed:
    return ValidationFailed.field("file", message)


def _read_rows(filename: str, content: bytes) -> list[dict[str, Any]]:
    """Rows as {column: value} (header names lower-cased); blank rows dropped."""
    is_xlsx = content[:4] == b"PK\x03\x04" or filename.lower().endswith((".xlsx", ".xlsm"))
    rows: list[list[Any]]
    if is_xlsx:
        rows = _xlsx_rows(content)
    else:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _file_error("must be a UTF-8 CSV file or an XLSX workbook") from None
        try:
            rows = [list(r) for r in csv.reader(io.StringIO(text, newline=""))]
        except csv.Error as error:
            raise _file_error(f"is not valid CSV: {error}") from None
    if not rows:
        raise _file_error("is empty (a header row is required)")
    header = [str(h or "").strip().lower() for h in rows[0]]
    missing = [c for c in ("title", "impact", "probability") if c not in header]
    if missing:
        raise _file_error("missing column(s): " + ", ".join(missing))
    parsed = []
    for number, values in enumerate(rows[1:], start=2):
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        row = {name: values[i] if i < len(values) else None for i, name in enumerate(header)}
        row["__row__"] = number
        parsed.append(row)
    if len(parsed) > MAX_IMPORT_ROWS:
        raise _file_error(f"has more than {MAX_IMPORT_ROWS} rows; split it")
    return parsed


def _xlsx_rows(content: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise _file_error(f"is not a readable XLSX workbook ({type(error).__name__})") from None
    except Exception as error:  # openpyxl raises assorted errors on malformed files
        raise _file_error(f"is not a readable XLSX workbook ({type(error).__name__})") from None
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            return []
        return [
            list(r)
            for r, _ in zip(
                sheet.iter_rows(values_only=True), range(MAX_IMPORT_ROWS + 2), strict=False
            )
        ]
    finally:
        workbook.close()


def _text(value: Any) -> str:
    if type(value) is str:  # every CSV cell: the other cases are XLSX values
        text = value.strip()
        return unquote(text) if text[:1] == "'" else text
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return unquote(str(value).strip())


def _split(value: Any) -> list[str]:
    text = _text(value).replace(",", ";")
    return [part.strip() for part in text.split(";") if part.strip()]


@dataclass(frozen=True)
class _Columns:
    """The importable columns and custom field columns (``cf_<name>``) of a file, in the
    order of ``_IMPORTABLE``: every row of a file has the same ones (its header's)."""

    importable: tuple[str, ...]
    custom: tuple[str, ...]

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> _Columns:
        return cls(
            tuple(c for c in _IMPORTABLE if c in row),
            tuple(n for n in row if isinstance(n, str) and n.startswith("cf_")),
        )


def _candidate(row: Mapping[str, Any], columns: _Columns | None = None) -> dict[str, Any]:
    """Importable fields of a row; blank cells are left out (defaults apply)."""
    plan = columns or _Columns.of(row)
    data: dict[str, Any] = {}
    for column in plan.importable:
        raw = row[column]
        if column in LIST_COLUMNS:
            data[column] = _split(raw)
            continue
        if column == "review_date" and isinstance(raw, datetime):
            data[column] = raw.date()
            continue
        text = _text(raw)
        if not text and column not in ("title", "impact", "probability"):
            continue
        if column in ("status", "treatment"):
            text = text.upper()
        data[column] = text
    custom = {name[3:]: row[name] for name in plan.custom if _text(row[name])}
    if custom:
        data["custom_fields"] = {
            k: (v.date() if isinstance(v, datetime) else _text(v) if isinstance(v, str) else v)
            for k, v in custom.items()
        }
    return data


def _column(field: str) -> str:
    return "cf_" + field.split(".", 1)[1] if field.startswith("custom_fields.") else field


def _pydantic_errors(number: int, error: ValidationError) -> list[ImportRowError]:
    found = []
    for item in error.errors():
        loc = [str(p) for p in item.get("loc", ())]
        field = ".".join(loc) or "row"
        if loc and loc[0] in LIST_COLUMNS:
            field = loc[0]
        found.append(ImportRowError(row=number, field=_column(field), message=item["msg"]))
    return found


def _version(row: Mapping[str, Any]) -> int | None:
    text = _text(row.get("version"))
    return int(text) if text.isdigit() and len(text) < 10 else None


def _existing_id(row: Mapping[str, Any]) -> uuid.UUID | None:
    text = _text(row.get("id"))
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


@dataclass
class _Import:
    """What an import has found so far, chunk by chunk."""

    context: RequestContext
    definitions: list[CustomField]
    scoring: ScoringModel
    dry_run: bool
    events: bool  # whether anyone receives the rows' risk.created / risk.updated events
    errors: list[ImportRowError] = field(default_factory=list)
    seen: set[uuid.UUID] = field(default_factory=set)
    # ids only: each chunk's risks and events are written (or dropped) with the chunk
    created: list[uuid.UUID] = field(default_factory=list)
    updated: list[uuid.UUID] = field(default_factory=list)

    @property
    def writing(self) -> bool:
        """Rows are written while the import can still succeed (never in a dry run)."""
        return not self.dry_run and not self.errors

    def fail(self, number: int, error: AppError) -> None:
        fallback = "version" if isinstance(error, PreconditionFailed) else "id"
        for item in error.errors or [{"field": fallback, "message": error.detail}]:
            self.errors.append(
                ImportRowError(
                    row=number, field=_column(str(item["field"])), message=item["message"]
                )
            )


@dataclass
class _Found:
    """What validating one chunk needs from the database, read before it is validated."""

    row_ids: list[uuid.UUID | None]  # the id each row names, if any (parsed once)
    current: dict[uuid.UUID, Row[Any]]  # the live risks its rows name by id, as read
    columns: list[str]  # the names of their values

    def risk(self, risk_id: uuid.UUID) -> Risk:
        """A risk that the chunk names, in memory: built while validating (which overlaps the
        previous chunk's writes), not while reading (which happens between two writes)."""
        return batch.transient(dict(zip(self.columns, self.current[risk_id], strict=True)))

    links: dict[uuid.UUID, list[uuid.UUID]]  # their asset links
    reductions: dict[uuid.UUID, tuple[int, int]]  # their open mitigations' reductions
    lookups: commands.Lookups  # the owners and assets its rows name


@dataclass
class _Built:
    """One chunk validated in memory: what writing it takes."""

    created: commands.CreatedRows
    updated: batch.UpdatedRows
    events: list[tuple[str, RawJson]]


async def import_file(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    filename: str,
    content: bytes,
    dry_run: bool,
) -> ImportResult:
    """Validate every row; write all of them or none (a dry run always writes none).

    The rows are handled in chunks of ``CHUNK``: each chunk is validated with a fixed number
    of lookups and, while no row has failed, written with a fixed number of set-based
    statements (``risks.batch``); the first invalid row stops the writing (the transaction is
    rolled back at the end) but every row is still validated, so the report names them all.
    A chunk is validated while PostgreSQL writes the ones before it (``_pipeline``). The
    garbage collector waits meanwhile (``collections_paused``).
    """
    with collections_paused():
        session = uow.session
        rows = _read_rows(filename, content)
        definitions = list(
            await session.scalars(
                select(CustomField).where(CustomField.tenant_id == context.tenant_id)
            )
        )
        scoring = await scoring_for(session, tenant_id=context.tenant_id)
        state = _Import(
            context=context,
            definitions=definitions,
            scoring=scoring,
            dry_run=dry_run,
            events=not dry_run and await _events_wanted(session, context),
        )
        await _pipeline(uow, state, [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)])
        total = len(rows)
        del rows  # the parsed file, no longer needed while the outbox and the commit run
        errors = sorted(state.errors, key=lambda e: (e.row, e.field))
        result = ImportResult(
            dry_run=dry_run,
            committed=False,
            total_rows=total,
            created=len(state.created),
            updated=len(state.updated),
            failed=len({e.row for e in errors}),
            errors=errors,
            ids=[],
        )
        if dry_run:
            await uow.rollback()
            return result
        if errors:
            await uow.rollback()
            raise ValidationFailed(
                f"{result.failed} row(s) are invalid; nothing was imported.",
                errors=[e.model_dump() for e in errors],
            )
        record(
            session,
            context=context,
            action="risk.import",
            resource_type="risk",
            resource_id=None,
            changes={"filename": filename, "created": result.created, "updated": result.updated},
        )
        _announce(uow, context, state.created, state.updated)
        await uow.commit()
        result.committed = True
        result.ids = [*state.created, *state.updated]
        return result


async def _pipeline(
    uow: UnitOfWork, state: _Import, chunks: Sequence[Sequence[Mapping[str, Any]]]
) -> None:
    """Validate chunk N in this process while the database writes the chunks before it and
    reads what chunk N + 1 needs.

    Done one after the other, an import took the sum of its CPU time here and PostgreSQL's;
    now it takes about the larger of the two. Up to ``WRITES_AHEAD`` validated chunks wait for
    their write, so that neither side waits for the other when one chunk takes longer. On
    PostgreSQL the lookups run on a second connection of their own (``_lookup_session``),
    beside the writes; on SQLite both share the import's session, and a lock keeps them from
    using it at once. Either way no chunk reads what another writes: a file names each risk
    once, and the lookups read only the risks it names and what the import leaves alone
    (their asset links and mitigations, members, assets). Validation touches no database and
    yields to the event loop every few rows, so the writes (and other requests) go on
    meanwhile.
    """
    if not chunks:
        return
    async with _lookup_session(uow.session, state.context.tenant_id) as reader:
        one_connection = asyncio.Lock()  # held by each statement of an import on one session

        async def lookups(rows: Sequence[Mapping[str, Any]]) -> _Found:
            async with one_connection if reader is uow.session else contextlib.nullcontext():
                return await _find(reader, state, rows)

        async def write(built: _Built, after: asyncio.Task[None] | None) -> None:
            if after is not None:  # the chunks are written in their order
                await after
            async with one_connection:
                await _write(uow, state.context, built)

        looking: asyncio.Task[_Found] | None = asyncio.create_task(lookups(chunks[0]))
        writes: collections.deque[asyncio.Task[None]] = collections.deque()
        try:
            for index, chunk in enumerate(chunks):
                assert looking is not None
                found = await looking
                looking = None
                if index + 1 < len(chunks):
                    looking = asyncio.create_task(lookups(chunks[index + 1]))
                built = await _build(state, chunk, found)
                while len(writes) >= WRITES_AHEAD:
                    await writes.popleft()
                if state.writing:
                    last = writes[-1] if writes else None
                    writes.append(asyncio.create_task(write(built, last)))
            while writes:
                await writes.popleft()
        finally:  # validating or writing failed: what is still running stops with it
            for task in (looking, *writes):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await task


@contextlib.asynccontextmanager
async def _lookup_session(
    session: AsyncSession, tenant_id: uuid.UUID
) -> AsyncIterator[AsyncSession]:
    """The session that an import's lookups use: on PostgreSQL a second one, bound to the
    tenant, so that they run while the import's session writes (a connection serves one
    statement at a time). It reads what is committed; a risk changed by someone else after
    its lookup fails the import's guarded UPDATE (``batch.update_risks``, a 412) instead of
    being overwritten. SQLite (one writer, a file on this host) shares the import's session."""
    if dialect_name(session) != "postgresql" or session.bind is None:
        yield session
        return
    async with AsyncSession(bind=session.bind, expire_on_commit=False) as reader:
        await bind_session_to_tenant(reader, tenant_id)
        yield reader


_UUID = TypeAdapter(uuid.UUID)


def _uuid(text: str) -> uuid.UUID | None:
    """``text`` as the schemas parse a UUID; None when it is not one (validation says so)."""
    try:
        return _UUID.validate_python(text)
    except ValidationError:
        return None


def _named(rows: Sequence[Mapping[str, Any]], column: str) -> set[uuid.UUID]:
    """The ids that the rows' ``column`` cells name."""
    found: set[uuid.UUID] = set()
    for row in rows:
        if column in row:
            for text in _split(row[column]) if column in LIST_COLUMNS else [_text(row[column])]:
                parsed = _uuid(text) if text else None
                if parsed is not None:
                    found.add(parsed)
    return found


async def _find(session: AsyncSession, state: _Import, rows: Sequence[Mapping[str, Any]]) -> _Found:
    """One chunk's lookups, a fixed number of queries: the live risks its rows name by id (the
    version read is the one their UPDATE is guarded by), their asset links and open
    reductions, and the owners and assets it names."""
    context = state.context
    row_ids = [_existing_id(r) for r in rows]
    ids = [i for i in row_ids if i is not None]
    current: dict[uuid.UUID, Row[Any]] = {}
    columns: list[str] = []
    if ids:
        query = select(*batch.RISKS.c).where(
            among(session, batch.RISKS.c.id, ids),
            batch.tenant_guard(context.tenant_id),
            batch.RISKS.c.deleted_at.is_(None),
        )
        read = await session.execute(query)
        columns = list(read.keys())  # a dict per row from the tuple: a RowMapping is slow to copy
        current = {row.id: row for row in read}
    links = await reads.asset_ids_for(session, list(current))
    reductions = await levels.open_reductions(
        session, tenant_id=context.tenant_id, risk_ids=list(current)
    )
    assets = _named(rows, "asset_ids") | {a for linked in links.values() for a in linked}
    lookups = await commands.load_lookups(
        session,
        context=context,
        owners=_named(rows, "owner_id"),
        assets=assets,
        definitions=state.definitions,
        scoring=state.scoring,
    )
    return _Found(
        row_ids=row_ids,
        current=current,
        columns=columns,
        links=links,
        reductions=reductions,
        lookups=lookups,
    )


YIELD_EVERY = 10  # rows validated between two turns of the event loop


async def _build(state: _Import, rows: Sequence[Mapping[str, Any]], found: _Found) -> _Built:
    """Validate one chunk against its lookups and build its writes in memory (no database)."""
    creates: list[tuple[int, RiskCreate]] = []
    updates: list[tuple[int, Risk, RiskUpdate, int | None]] = []
    columns = _Columns.of(rows[0]) if rows else None
    for index, row in enumerate(rows):
        if index % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        _sort_row(state, found, row, found.row_ids[index], columns, creates, updates)
    now = utcnow()
    created: list[reads.RiskRecord] = []
    rows_of_created = commands.CreatedRows()
    for start in range(0, len(creates), YIELD_EVERY):
        await asyncio.sleep(0)
        made, row_errors = commands.validate_new(
            creates[start : start + YIELD_EVERY],
            context=state.context,
            lookups=found.lookups,
            source=RiskSource.IMPORT.value,
            now=now,
        )
        created += made
        if state.writing:
            rows_of_created.add(state.context, made, now)
        state.errors.extend(
            ImportRowError(row=e.index, field=_column(e.field), message=e.message)
            for e in row_errors
        )
    state.created.extend(r.risk.id for r in created)
    changed: list[batch.Changed] = []
    updated: list[reads.RiskRecord] = []
    for index, (number, risk, data, version) in enumerate(updates):
        if index % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        current_assets = found.links.get(risk.id, [])
        try:
            item = _apply_update(state, risk, data, version, current_assets, found, now)
        except AppError as error:
            state.fail(number, error)
            continue
        if item is not None:
            changed.append(item)
        updated.append(
            reads.RiskRecord(risk, item.asset_ids if item is not None else current_assets)
        )
    state.updated.extend(r.risk.id for r in updated)
    rows_of_updated = batch.UpdatedRows()
    if state.writing:
        for start in range(0, len(changed), YIELD_EVERY):
            await asyncio.sleep(0)
            rows_of_updated.add(
                state.context, changed[start : start + YIELD_EVERY], action="risk.update"
            )
        rows_of_updated.finish()
    events = (
        await _risk_events(state.context, created, updated)
        if state.writing and state.events
        else []
    )
    return _Built(created=rows_of_created, updated=rows_of_updated, events=events)


def _sort_row(
    state: _Import,
    found: _Found,
    row: Mapping[str, Any],
    risk_id: uuid.UUID | None,
    columns: _Columns | None,
    creates: list[tuple[int, RiskCreate]],
    updates: list[tuple[int, Risk, RiskUpdate, int | None]],
) -> None:
    """Parse one row (naming ``risk_id``) into a new risk or an update of a live one (or
    record its problems)."""
    number = int(row["__row__"])
    data = _candidate(row, columns)
    try:
        if risk_id is not None and risk_id in found.current:
            if risk_id in state.seen:
                state.errors.append(
                    ImportRowError(row=number, field="id", message="appears more than once")
                )
                return
            state.seen.add(risk_id)
            updates.append((number, found.risk(risk_id), RiskUpdate(**data), _version(row)))
        else:
            creates.append((number, RiskCreate(**data)))
    except ValidationError as error:
        problems = _pydantic_errors(number, error)
        named = {e.field for e in problems}
        problems += [
            ImportRowError(row=number, field=field, message=message)
            for field, message in commands.level_problems(state.scoring, data).items()
            if field not in named
        ]
        state.errors.extend(problems)


async def _write(uow: UnitOfWork, context: RequestContext, built: _Built) -> None:
    """One chunk's rows, history, audit rows and webhook events, in the import's transaction."""
    session = uow.session
    if built.created.risks:
        await commands.write_created(session, rows=built.created)
    if built.updated.changed:
        await batch.write_updated(session, rows=built.updated)
    for topic, payload in built.events:
        uow.add_event(topic, payload, tenant_id=context.tenant_id)
    await uow.write_events()


def _apply_update(
    state: _Import,
    risk: Risk,
    data: RiskUpdate,
    version: int | None,
    current_assets: list[uuid.UUID],
    found: _Found,
    now: datetime,
) -> batch.Changed | None:
    """Apply one row to ``risk`` in memory (raising what ``update_risk`` would raise); None
    when nothing changes."""
    context = state.context
    members = found.lookups.members
    criticality = found.lookups.criticality
    scoring = state.scoring
    commands.check_version(risk, version, data.version)
    context.require_on("risk:update", risk.owner_id)
    changes = commands.requested_changes(data)
    before = commands.snapshot_before(risk, changes, current_assets)
    if "owner_id" in changes and changes["owner_id"] != risk.owner_id:
        context.require("risk:assign")
        if changes["owner_id"] not in members:
            raise ValidationFailed.field("owner_id", "must be a member of this tenant")
    if changes.get("status") == RiskStatus.ACCEPTED and risk.status != RiskStatus.ACCEPTED:
        raise Conflict(
            commands.ACCEPTANCE_WORKFLOW,
            errors=[{"field": "status", "message": commands.ACCEPTANCE_WORKFLOW}],
        )
    new_assets = list(changes.pop("asset_ids", current_assets))
    if "custom_fields" in changes:
        merged, problems = validate_values(
            state.definitions,
            changes["custom_fields"],
            current=risk.custom_fields,
            enforce_required=True,
        )
        if problems:
            raise ValidationFailed("Invalid custom field value", errors=problems)
        changes["custom_fields"] = merged
    read = dict(risk.__dict__)  # the values as read, to tell which columns move
    labels_before = (
        None
        if batch.LABELLED.isdisjoint(changes)
        else pairs_for(risk.tags, risk.frameworks, risk.custom_fields)
    )
    columns = commands.assign_plain(risk, changes)
    relink = sorted(new_assets) != sorted(current_assets)
    if relink or set(changes) & commands.LEVEL_FIELDS:
        missing = [str(a) for a in new_assets if a not in criticality]
        if missing:
            raise ValidationFailed.field("asset_ids", "unknown asset(s): " + ", ".join(missing))
        commands.check_levels(scoring, risk.impact, risk.probability)
        commands.check_levels(scoring, risk.inherent_impact, risk.inherent_probability, "inherent.")
        if risk.target_impact is not None and risk.target_probability is not None:
            commands.check_levels(scoring, risk.target_impact, risk.target_probability, "target.")
        reduction = found.reductions.get(risk.id, (0, 0))
        derived = levels.derived(risk, scoring, [criticality[a] for a in new_assets], reduction)
        risk.__dict__.update(derived)
        columns.extend(derived)
    delta = diff(before, commands.snapshot_after(before, risk, columns, new_assets))
    if not delta:
        return None
    values = risk.__dict__
    moved = [name for name in columns if values[name] != read.get(name)]
    read_version = risk.version
    values.update(version=read_version + 1, updated_at=now)  # no session tracks it
    return batch.Changed(
        risk, read_version, before, delta, new_assets, relink, labels_before, moved
    )


def _announce(
    uow: UnitOfWork,
    context: RequestContext,
    created: Sequence[uuid.UUID],
    updated: Sequence[uuid.UUID],
) -> None:
    """One event for the whole import: its cache invalidation (the register and the detail of
    every updated risk); the risks' own events add none."""
    uow.emit(
        DomainEvent(
            type="risk.imported",
            tenant_id=context.tenant_id,
            resource_id=None,
            data={
                "created": len(created),
                "updated": len(updated),
                "updated_ids": [str(i) for i in updated],
            },
            actor_id=context.user_id,
        )
    )


async def _events_wanted(session: AsyncSession, context: RequestContext) -> bool:
    """Whether the tenant has a receiver of the rows' events: an import of thousands of rows
    skips building and relaying events nobody would get (an app installed meanwhile waits for
    the import to commit)."""
    from openrisk.tasks import events_wanted  # the routes' registry imports every domain

    return await events_wanted(
        session, tenant_id=context.tenant_id, topics=("risk.created", "risk.updated")
    )


async def _risk_events(
    context: RequestContext,
    created: Sequence[reads.RiskRecord],
    updated: Sequence[reads.RiskRecord],
) -> list[tuple[str, RawJson]]:
    """One outbox event per risk created or updated (webhooks): the payload of
    ``event_payload`` for a ``risk.created`` / ``risk.updated`` event, encoded once from the
    risk's document."""
    actor = None if context.user_id is None else str(context.user_id)
    events: list[tuple[str, RawJson]] = []
    for kind, records in (("risk.created", created), ("risk.updated", updated)):
        for index, rec in enumerate(records):
            if index % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            document = documents.dumps(documents.risk(rec.risk, rec.asset_ids))
            payload = {
                "resource_id": str(rec.risk.id),
                "data": orjson.Fragment(document),
                "actor_id": actor,
                "occurred_at": datetime.now(UTC).isoformat(),
            }
            events.append((kind, RawJson(orjson.dumps(payload))))
    return events
