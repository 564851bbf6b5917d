"""Which cached answers a write makes stale: domain events → generation bumps.

Declared cached reads (``core/cache/reads.py``) name the namespaces their answer depends on
(``depends_on``); a write's unit of work bumps the ones its events map to here, right after the
commit and before the write answers: one INCR per namespace, never a scan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from openrisk.core.cache.base import CacheUnavailable
from openrisk.core.cache.response import ResponseCache
from openrisk.core.events import DomainEvent

# Dependency namespaces, tenant-scoped unless noted.
RISKS = "risks"  # any risk's score, status, tags, owner…: lists, search, matrix, dashboards
ASSETS = "assets"  # asset criticality feeds risk scores
MITIGATIONS = "mitigations"  # dashboard mitigation statistics
CUSTOM_FIELDS = "custom_fields"  # risks' custom field values and filters
QUANTIFICATION = "quantification"  # risks' quantitative inputs and the loss appetite
RISK_MODEL = "risk_model"  # the tenant's risk model: every risk's levels, score and severity
ACCEPTANCES = "acceptances"  # the acceptance workflow's requests and decisions
CONNECTORS = "connectors"  # global: the catalogue and its ratings
APPS = "apps"
AUTHZ = "authz"  # global: memberships, roles, tokens, sign-ins (rbac/authz_cache.py)


RISK_KEY_BUCKETS = 256


def risk_key(risk_id: object) -> str:
    """The namespace of one risk's own answers (its detail). Risks share it in 256 buckets (by
    the end of the id): a write makes 1/256 of the cached details stale, and an import that
    updates thousands of risks bumps at most 256 namespaces, not one per risk."""
    return f"risk.{str(risk_id)[-2:]}"


def app_key(app_id: object) -> str:
    return f"app.{app_id}"


# Answers showing risks as RiskOut (custom field values, asset links): lists, search, top risks.
REGISTER_VIEWS = (RISKS, ASSETS, CUSTOM_FIELDS)
# Figures computed from risks alone (counts, scores; an asset's rescoring is a risk event too).
RISK_FIGURES = (RISKS, ASSETS)
# Dashboard statistics also report mitigation progress; nothing else reads mitigations.
DASHBOARD_STATS = (RISKS, ASSETS, MITIGATIONS)
# The register's annual loss: quantified risks (live ones), their mitigations, the appetite.
QUANTITATIVE_VIEWS = (RISKS, MITIGATIONS, QUANTIFICATION)


def namespaces_for(event: DomainEvent) -> list[tuple[str | None, list[str]]]:
    """[(tenant, or None for global; namespaces to bump)] for a domain event."""
    tenant = str(event.tenant_id) if event.tenant_id else None
    match event.resource:
        case "risk" if event.resource_id is None:  # a batch (an import): its updated risks
            updated = event.data.get("updated_ids") or []
            return [(tenant, [RISKS, *dict.fromkeys(risk_key(i) for i in updated)])]
        case "risk":
            return [(tenant, [RISKS, risk_key(event.resource_id)])]
        case "asset":
            return [(tenant, [ASSETS])]
        case "mitigation":
            return [(tenant, [MITIGATIONS])]
        case "quantification" if event.type == "quantification.updated":
            # a risk's estimate and its simulation: risk answers show their summary
            return [(tenant, [QUANTIFICATION, RISKS, risk_key(event.resource_id)])]
        case "quantification":
            return [(tenant, [QUANTIFICATION])]
        case "risk_acceptance":  # a step of the workflow (an expiry moved the risk's status)
            risk_id = event.data.get("risk_id")
            keys = [risk_key(risk_id)] if risk_id else []
            return [(tenant, [RISKS, ACCEPTANCES, *keys])]
        case "risk_levels":  # a mitigation's reductions moved the risk's residual level
            return [(tenant, [RISKS, risk_key(event.resource_id)])]
        case "custom_field":
            return [(tenant, [CUSTOM_FIELDS])]
        case "risk_model":  # re-scored every risk: every risk answer and figure
            return [(tenant, [RISKS, ASSETS, RISK_MODEL])]
        case "connector":
            return [(None, [CONNECTORS])]
        case "app":  # installs and uninstalls change the catalogue's install counts too
            return [(tenant, [APPS, app_key(event.resource_id)]), (None, [CONNECTORS])]
    return []


class CacheInvalidator:
    """Applies a unit of work's bumps (``core/uow.py``); raises `CacheUnavailable` when the
    shared cache did not take them (the outbox row then stays for the sweeper)."""

    def __init__(
        self, responses: ResponseCache, *, authz: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._responses = responses
        self._authz = authz

    async def apply(self, bumps: list[tuple[str | None, list[str]]]) -> None:
        for tenant, names in bumps:
            authz = tenant is None and AUTHZ in names
            regular = [name for name in names if not (tenant is None and name == AUTHZ)]
            if regular and not await self._responses.bump(tenant, *regular):
                raise CacheUnavailable("generation bump deferred")
            if authz and self._authz is not None:
                await self._authz()
