"""Quantified risks: inputs, results stored with the digest of what they were simulated from,
the register's annual loss and the tenant's loss appetite.

A risk's result is simulated when its inputs are written, and again in the background when
something it was simulated from changes (a mitigation's reductions, cost or status, one added,
cancelled or removed, the risk restored: ``tasks.py``). A read that still finds the stored
digest different from its inputs' (the job has not run yet) simulates and stores the result
itself: results are never served from a stale digest. Whoever stores a new result makes the
risk answers that carry its summary, and the register's annual loss, stale in the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import diff, record
from openrisk.core.cache.invalidation import QUANTIFICATION, RISKS, risk_key
from openrisk.core.context import RequestContext
from openrisk.core.db.base import Base, utcnow
from openrisk.core.errors import NotFound, ValidationFailed
from openrisk.core.events import DomainEvent
from openrisk.core.uow import UnitOfWork, commit_with
from openrisk.mitigations.models import Mitigation
from openrisk.mitigations.schemas import MitigationStatus
from openrisk.quant import (
    Control,
    Lognormal,
    LossAppetite,
    Pert,
    PortfolioResult,
    QuantifiedRisk,
    RiskResult,
    simulate_portfolio,
    simulate_risk,
)
from openrisk.quant.results import ExceedanceCurve, LossSummary
from openrisk.quantification.models import LossAppetiteSetting, RiskQuantification
from openrisk.quantification.schemas import (
    DEFAULT_CURRENCY,
    RISK_ITERATIONS,
    RISK_SEED,
    AppetiteIn,
    AppetiteOut,
    AppetiteVerdictOut,
    ContributorOut,
    ControlOut,
    ExceedanceCurveOut,
    LossSummaryOut,
    PortfolioOut,
    QuantificationIn,
    QuantificationOut,
    RiskResultOut,
    as_json,
    problems,
)
from openrisk.risks import queries, reads
from openrisk.risks.common import dialect_name
from openrisk.risks.models import Risk

ENGINE_VERSION = 2  # part of every digest: a change of the model or its sampling makes every
# stored result stale (2: the kernel draws differently; the same seed gives other numbers)
EVENT_UPDATED = "quantification.updated"
EVENT_APPETITE = "quantification.appetite"


# --------------------------------------------------------------------------- engine inputs


@dataclass(frozen=True, slots=True)
class ControlInput:
    """A mitigation as far as the simulation and its report go."""

    id: uuid.UUID
    risk_id: uuid.UUID
    title: str
    status: str
    frequency_reduction: float
    loss_reduction: float
    annual_cost: float

    def digest_part(self) -> list[Any]:
        return [str(self.id), self.frequency_reduction, self.loss_reduction, self.annual_cost]

    def engine(self) -> Control:
        return Control(
            key=str(self.id),
            frequency_reduction=self.frequency_reduction,
            loss_reduction=self.loss_reduction,
            annual_cost=self.annual_cost,
        )


def engine_risk(
    risk_id: uuid.UUID, inputs: QuantificationIn, controls: Sequence[ControlInput]
) -> QuantifiedRisk:
    f, loss = inputs.frequency, inputs.loss
    magnitude: Lognormal | Pert
    if loss.kind == "interval":
        assert loss.low is not None and loss.high is not None
        magnitude = Lognormal.from_interval(loss.low, loss.high)
    else:
        assert loss.min is not None and loss.most_likely is not None and loss.max is not None
        magnitude = Pert(loss.min, loss.most_likely, loss.max)
    return QuantifiedRisk(
        key=str(risk_id),
        frequency=Pert(f.min, f.most_likely, f.max),
        loss=magnitude,
        controls=tuple(c.engine() for c in controls),
    )


def digest(payload: Any) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def risk_digest(inputs: dict[str, Any], controls: Sequence[ControlInput]) -> str:
    return digest(
        {
            "engine": ENGINE_VERSION,
            "iterations": RISK_ITERATIONS,
            "seed": RISK_SEED,
            "inputs": inputs,
            "controls": [c.digest_part() for c in controls],
        }
    )


def validated(data: QuantificationIn) -> QuantificationIn:
    found = problems(data)
    if found:
        detail = "; ".join(f"{field}: {message}" for field, message in found)
        raise ValidationFailed(
            detail,
            errors=[{"field": f, "message": m, "type": "value_error"} for f, m in found],
        )
    return data


def parse_inputs(stored: dict[str, Any]) -> QuantificationIn:
    return QuantificationIn.model_validate(stored)


async def controls_of(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    risk_id: uuid.UUID | None = None,
    risk_ids: Sequence[uuid.UUID] | None = None,
) -> dict[uuid.UUID, list[ControlInput]]:
    """Mitigations that are not cancelled, of one risk, of some risks or of every quantified
    risk, by risk, in id order (one query)."""
    statement = select(
        Mitigation.id,
        Mitigation.risk_id,
        Mitigation.title,
        Mitigation.status,
        Mitigation.frequency_reduction,
        Mitigation.loss_reduction,
        Mitigation.annual_cost,
    ).where(
        Mitigation.tenant_id == tenant_id,
        Mitigation.deleted_at.is_(None),
        Mitigation.status != MitigationStatus.CANCELLED.value,
    )
    if risk_id is not None:
        statement = statement.where(Mitigation.risk_id == risk_id)
    elif risk_ids is not None:
        statement = statement.where(Mitigation.risk_id.in_(risk_ids))
    else:
        statement = statement.join(
            RiskQuantification, RiskQuantification.risk_id == Mitigation.risk_id
        ).where(RiskQuantification.tenant_id == tenant_id)
    found: dict[uuid.UUID, list[ControlInput]] = defaultdict(list)
    for row in await session.execute(statement):
        found[row.risk_id].append(
            ControlInput(
                id=row.id,
                risk_id=row.risk_id,
                title=row.title,
                status=row.status,
                frequency_reduction=float(row.frequency_reduction),
                loss_reduction=float(row.loss_reduction),
                annual_cost=float(row.annual_cost),
            )
        )
    for controls in found.values():
        controls.sort(key=lambda c: str(c.id))
    return found


# --------------------------------------------------------------------------- results as JSON


def _summary(summary: LossSummary) -> dict[str, float]:
    return {
        "mean": summary.mean,
        "median": summary.median,
        "p90": summary.p90,
        "p95": summary.p95,
        "p99": summary.p99,
        "maximum": summary.maximum,
        "p_at_least_one": summary.p_at_least_one,
    }


def _curve(curve: ExceedanceCurve) -> dict[str, list[float]]:
    return {
        "thresholds": list(curve.thresholds),
        "inherent": list(curve.inherent),
        "residual": list(curve.residual),
    }


def result_json(result: RiskResult) -> dict[str, Any]:
    return {
        "iterations": result.iterations,
        "seed": result.seed,
        "inherent": _summary(result.inherent),
        "residual": _summary(result.residual),
        "curve": _curve(result.curve),
        "controls": {
            c.key: {"ale_before": c.ale_before, "ale_after": c.ale_after, "rosi": c.rosi}
            for c in result.controls
        },
    }


async def simulate_one(
    risk_id: uuid.UUID, inputs: QuantificationIn, controls: Sequence[ControlInput]
) -> dict[str, Any]:
    """Simulate off the event loop (numpy releases the GIL for most of the work)."""
    risk = engine_risk(risk_id, inputs, controls)
    result = await asyncio.to_thread(
        simulate_risk, risk, iterations=RISK_ITERATIONS, seed=RISK_SEED
    )
    return result_json(result)


def _out(row: RiskQuantification, controls: Sequence[ControlInput]) -> QuantificationOut:
    inputs = parse_inputs(row.inputs)
    result = row.result
    results = None
    if result is not None and row.computed_at is not None and row.result_digest is not None:
        stored = result["controls"]
        results = RiskResultOut(
            iterations=result["iterations"],
            seed=result["seed"],
            digest=row.result_digest,
            computed_at=row.computed_at,
            inherent=LossSummaryOut.model_validate(result["inherent"]),
            residual=LossSummaryOut.model_validate(result["residual"]),
            curve=ExceedanceCurveOut.model_validate(result["curve"]),
            controls=[
                ControlOut(
                    mitigation_id=c.id,
                    title=c.title,
                    status=c.status,
                    frequency_reduction=c.frequency_reduction,
                    loss_reduction=c.loss_reduction,
                    annual_cost=c.annual_cost,
                    ale_before=stored[str(c.id)]["ale_before"],
                    ale_after=stored[str(c.id)]["ale_after"],
                    rosi=stored[str(c.id)]["rosi"],
                )
                for c in controls
            ],
        )
    return QuantificationOut(
        risk_id=row.risk_id, quantification=inputs, results=results, updated_at=row.updated_at
    )


async def _row(
    session: AsyncSession, *, tenant_id: uuid.UUID, risk_id: uuid.UUID
) -> RiskQuantification | None:
    return await session.scalar(
        select(RiskQuantification).where(
            RiskQuantification.tenant_id == tenant_id, RiskQuantification.risk_id == risk_id
        )
    )


async def _refresh(
    row: RiskQuantification, controls: Sequence[ControlInput], *, force: bool = False
) -> bool:
    """Simulate the row again when its stored result is not of these inputs; True if it was."""
    wanted = risk_digest(row.inputs, controls)
    if not force and row.result is not None and row.result_digest == wanted:
        return False
    row.result = await simulate_one(row.risk_id, parse_inputs(row.inputs), controls)
    row.result_digest = wanted
    row.computed_at = utcnow()
    return True


# --------------------------------------------------------------------------- per risk


async def get_quantification(
    *, uow: UnitOfWork, tenant_id: uuid.UUID, risk_id: uuid.UUID
) -> QuantificationOut:
    """The risk's inputs and results; results the background job has not yet brought up to
    date are simulated and stored first (a derived value: the same for every reader)."""
    session = uow.session
    await reads.get_risk(session, tenant_id=tenant_id, risk_id=risk_id)
    row = await _row(session, tenant_id=tenant_id, risk_id=risk_id)
    if row is None:
        return QuantificationOut(risk_id=risk_id, quantification=None, results=None)
    controls = (await controls_of(session, tenant_id=tenant_id, risk_id=risk_id)).get(risk_id, [])
    if await _refresh(row, controls):
        out = _out(row, controls)
        results_changed(uow, tenant_id=tenant_id, risk_ids=[risk_id])
        await uow.commit()
        return out
    return _out(row, controls)


async def recompute_results(
    *, uow: UnitOfWork, tenant_id: uuid.UUID, risk_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """Simulate again the live risks among ``risk_ids`` whose stored digest is not their
    inputs' and store the results (what the background job does); returns those simulated.
    Each row is locked while it is brought up to date, so a concurrent writer of the same
    risk's estimate waits, and the stored result stays the simulation of the stored digest."""
    session = uow.session
    rows = list(
        await session.scalars(
            select(RiskQuantification)
            .join(Risk, Risk.id == RiskQuantification.risk_id)
            .where(
                RiskQuantification.tenant_id == tenant_id,
                RiskQuantification.risk_id.in_(risk_ids),
                *queries.live(tenant_id),
            )
            .order_by(RiskQuantification.risk_id)
            .with_for_update(of=RiskQuantification)
        )
    )
    if not rows:
        await uow.rollback()
        return []
    controls = await controls_of(session, tenant_id=tenant_id, risk_ids=[r.risk_id for r in rows])
    simulated = [row.risk_id for row in rows if await _refresh(row, controls.get(row.risk_id, []))]
    if not simulated:
        await uow.rollback()  # nothing written: the row locks go
        return []
    results_changed(uow, tenant_id=tenant_id, risk_ids=simulated)
    await uow.commit()
    return simulated


def results_changed(
    uow: UnitOfWork, *, tenant_id: uuid.UUID, risk_ids: Sequence[uuid.UUID]
) -> None:
    """New stored results: the answers carrying their summary (risk details, the register's
    lists) and the register's annual loss are stale once they commit."""
    uow.invalidate(tenant_id, QUANTIFICATION, RISKS, *dict.fromkeys(risk_key(r) for r in risk_ids))


async def set_quantification(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    risk_id: uuid.UUID,
    data: QuantificationIn,
) -> QuantificationOut:
    """Store the risk's inputs and simulate them (the caller needs risk:update on the risk).
    Writers of one risk are serialised on its row, so the stored result is always of the
    stored inputs."""
    session = uow.session
    risk = await reads.get_risk(session, tenant_id=context.tenant_id, risk_id=risk_id)
    context.require_on("risk:update", risk.owner_id)
    inputs = as_json(validated(data))
    now = utcnow()
    created = await _insert_unless_exists(
        session,
        RiskQuantification,
        {
            "risk_id": risk.id,
            "tenant_id": context.tenant_id,
            "inputs": inputs,
            "created_at": now,
            "updated_at": now,
        },
    )
    row = await session.scalar(
        select(RiskQuantification)
        .where(
            RiskQuantification.tenant_id == context.tenant_id,
            RiskQuantification.risk_id == risk_id,
        )
        .with_for_update()
    )
    assert row is not None
    before = {} if created else dict(row.inputs)
    row.inputs = inputs
    row.updated_by = context.user_id
    row.updated_at = now
    controls = (await controls_of(session, tenant_id=context.tenant_id, risk_id=risk_id)).get(
        risk_id, []
    )
    await _refresh(row, controls)
    await session.flush()
    changed = diff(_flat(before), _flat(inputs))
    if changed:
        record(
            session,
            context=context,
            action="risk.quantify",
            resource_type="risk",
            resource_id=risk.id,
            changes=changed,
        )
    out = _out(row, controls)
    await commit_with(uow, [_event(EVENT_UPDATED, context, risk.id)])
    return out


async def _insert_unless_exists(
    session: AsyncSession, model: type[Base], values: dict[str, Any]
) -> bool:
    """``INSERT … ON CONFLICT (primary key) DO NOTHING``: True when this call inserted it (a
    lost race leaves the transaction usable; the winner's row is then locked and updated)."""
    table = model.__table__
    assert isinstance(table, Table)
    module: Any = postgresql if dialect_name(session) == "postgresql" else sqlite
    statement = (
        module.insert(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=[c.name for c in table.primary_key.columns])
    )
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def delete_quantification(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    risk_id: uuid.UUID,
) -> None:
    session = uow.session
    risk = await reads.get_risk(session, tenant_id=context.tenant_id, risk_id=risk_id)
    context.require_on("risk:update", risk.owner_id)
    row = await _row(session, tenant_id=context.tenant_id, risk_id=risk_id)
    if row is None:
        raise NotFound("The risk is not quantified.")
    record(
        session,
        context=context,
        action="risk.unquantify",
        resource_type="risk",
        resource_id=risk.id,
        changes=diff(_flat(row.inputs), {}),
    )
    await session.delete(row)
    await commit_with(uow, [_event(EVENT_UPDATED, context, risk.id)])


def _flat(inputs: dict[str, Any]) -> dict[str, Any]:
    """``{"frequency.min": 1, …}``: one audit change per value."""
    return {
        f"{group}.{name}": value
        for group, values in inputs.items()
        for name, value in (values or {}).items()
    }


def _event(kind: str, context: RequestContext, resource_id: uuid.UUID) -> DomainEvent:
    return DomainEvent(
        type=kind,
        tenant_id=context.tenant_id,
        resource_id=resource_id,
        actor_id=context.user_id,
    )


# --------------------------------------------------------------------------- loss appetite


async def get_appetite(session: AsyncSession, *, tenant_id: uuid.UUID) -> AppetiteOut | None:
    row = await session.get(LossAppetiteSetting, tenant_id)
    if row is None or row.tenant_id != tenant_id:
        return None
    return AppetiteOut(
        threshold=row.threshold,
        max_probability=row.max_probability,
        currency=row.currency,
        updated_at=row.updated_at,
    )


async def set_appetite(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    data: AppetiteIn,
) -> AppetiteOut:
    """Set the loss appetite (also ``loss_appetite`` of ``PUT /risk-model``)."""
    out = await store_appetite(uow.session, context=context, data=data)
    await commit_with(uow, [appetite_event(context)])
    return out


def appetite_event(context: RequestContext) -> DomainEvent:
    return _event(EVENT_APPETITE, context, context.tenant_id)


async def store_appetite(
    session: AsyncSession, *, context: RequestContext, data: AppetiteIn
) -> AppetiteOut:
    """Write the loss appetite and its audit row; no commit."""
    now = utcnow()
    created = await _insert_unless_exists(
        session,
        LossAppetiteSetting,
        {"tenant_id": context.tenant_id, **data.model_dump(), "created_at": now, "updated_at": now},
    )
    row = await session.scalar(
        select(LossAppetiteSetting)
        .where(LossAppetiteSetting.tenant_id == context.tenant_id)
        .with_for_update()
    )
    assert row is not None
    before: dict[str, Any] = {}
    if not created:
        before = {
            "threshold": row.threshold,
            "max_probability": row.max_probability,
            "currency": row.currency,
        }
    row.threshold = data.threshold
    row.max_probability = data.max_probability
    row.currency = data.currency
    row.updated_by = context.user_id
    row.updated_at = now
    await session.flush()
    changed = diff(before, data.model_dump())
    if changed:
        record(
            session,
            context=context,
            action="tenant.loss_appetite",
            resource_type="tenant",
            resource_id=context.tenant_id,
            changes=changed,
        )
    return AppetiteOut(**data.model_dump(), updated_at=row.updated_at)


async def delete_appetite(*, uow: UnitOfWork, context: RequestContext) -> None:
    if not await remove_appetite(uow.session, context=context):
        raise NotFound("No loss appetite is set.")
    await commit_with(uow, [appetite_event(context)])


async def remove_appetite(session: AsyncSession, *, context: RequestContext) -> bool:
    """Remove the loss appetite (with its audit row); False when none was set. No commit."""
    row = await session.get(LossAppetiteSetting, context.tenant_id)
    if row is None:
        return False
    record(
        session,
        context=context,
        action="tenant.loss_appetite",
        resource_type="tenant",
        resource_id=context.tenant_id,
        changes=diff({"threshold": row.threshold, "max_probability": row.max_probability}, {}),
    )
    await session.delete(row)
    await session.flush()
    return True


# --------------------------------------------------------------------------- the register


@dataclass(frozen=True)
class PortfolioInputs:
    """Everything the register's simulation reads, and its digest."""

    iterations: int
    seed: int
    correlation: float
    risks: list[tuple[uuid.UUID, str, QuantificationIn, list[ControlInput]]]
    appetite: AppetiteOut | None
    digest: str

    @property
    def currencies(self) -> list[str]:
        return sorted({inputs.loss.currency for _, _, inputs, _ in self.risks})

    def cache_key(self) -> dict[str, object]:
        """What shapes the simulation (the digest covers the risks and the appetite)."""
        return {
            "iterations": self.iterations,
            "seed": self.seed,
            "correlation": self.correlation,
            "digest": self.digest,
        }


async def portfolio_inputs(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    iterations: int,
    seed: int,
    correlation: float = 0.0,
) -> PortfolioInputs:
    """The live quantified risks with their mitigations and the appetite (three queries)."""
    rows = await session.execute(
        select(RiskQuantification.risk_id, RiskQuantification.inputs, Risk.title)
        .join(Risk, Risk.id == RiskQuantification.risk_id)
        .where(RiskQuantification.tenant_id == tenant_id, *queries.live(tenant_id))
        .order_by(RiskQuantification.risk_id)
    )
    controls = await controls_of(session, tenant_id=tenant_id)
    risks = [
        (row.risk_id, row.title, parse_inputs(row.inputs), controls.get(row.risk_id, []))
        for row in rows
    ]
    appetite = await get_appetite(session, tenant_id=tenant_id)
    payload = {
        "engine": ENGINE_VERSION,
        "iterations": iterations,
        "seed": seed,
        "correlation": correlation,
        "risks": [
            [str(risk_id), as_json(inputs), [c.digest_part() for c in cs]]
            for risk_id, _, inputs, cs in risks
        ],
        "appetite": appetite.model_dump(mode="json", exclude={"updated_at"}) if appetite else None,
    }
    return PortfolioInputs(
        iterations=iterations,
        seed=seed,
        correlation=correlation,
        risks=risks,
        appetite=appetite,
        digest=digest(payload),
    )


def _run_portfolio(inputs: PortfolioInputs) -> PortfolioResult:
    appetite = (
        LossAppetite(inputs.appetite.threshold, inputs.appetite.max_probability)
        if inputs.appetite
        else None
    )
    return simulate_portfolio(
        [engine_risk(risk_id, q, cs) for risk_id, _, q, cs in inputs.risks],
        iterations=inputs.iterations,
        seed=inputs.seed,
        correlation=inputs.correlation,
        appetite=appetite,
    )


async def portfolio(inputs: PortfolioInputs) -> PortfolioOut:
    """Simulate the register (in a worker thread) and summarise it."""
    empty = PortfolioOut(
        iterations=inputs.iterations,
        seed=inputs.seed,
        correlation=inputs.correlation,
        digest=inputs.digest,
        risk_count=0,
        currencies=[],
        inherent=None,
        residual=None,
        var_p95=None,
        var_p99=None,
        curve=None,
        contributors=[],
        appetite=None,
    )
    if not inputs.risks:
        return empty
    result = await asyncio.to_thread(_run_portfolio, inputs)
    titles = {str(risk_id): title for risk_id, title, _, _ in inputs.risks}
    verdict = None
    if result.appetite is not None and inputs.appetite is not None:
        verdict = AppetiteVerdictOut(
            threshold=inputs.appetite.threshold,
            max_probability=inputs.appetite.max_probability,
            currency=inputs.appetite.currency,
            probability_inherent=result.appetite.probability_inherent,
            probability_residual=result.appetite.probability_residual,
            verdict="within" if result.appetite.within else "above",
        )
    return empty.model_copy(
        update={
            "risk_count": result.risk_count,
            "currencies": inputs.currencies or [DEFAULT_CURRENCY],
            "inherent": LossSummaryOut.model_validate(_summary(result.inherent)),
            "residual": LossSummaryOut.model_validate(_summary(result.residual)),
            "var_p95": result.residual.p95,
            "var_p99": result.residual.p99,
            "curve": ExceedanceCurveOut.model_validate(_curve(result.curve)),
            "contributors": [
                ContributorOut(
                    risk_id=uuid.UUID(c.key),
                    title=titles[c.key],
                    ale_inherent=c.ale_inherent,
                    ale_residual=c.ale_residual,
                    share=c.share,
                )
                for c in result.contributors
            ],
            "appetite": verdict,
        }
    )
