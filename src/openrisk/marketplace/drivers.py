"""What installed connectors actually do.

A connector of the catalogue without a driver here is catalogue-only: it can be installed and
configured (its configuration is validated and its secrets kept), but it reacts to no event and
its ``sync`` answers 409. Working drivers: ``webhook`` (signed risk events, sync = signed ping),
``slack`` (risk notifications through an incoming webhook, sync = test message) and
``csv-import`` (sync = import a CSV through the register's importer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.core.context import RequestContext
from openrisk.core.errors import Conflict, ValidationFailed
from openrisk.core.events import DomainEvent
from openrisk.core.uow import UnitOfWork
from openrisk.marketplace.delivery import AttemptLogger, Outgoing, deliver
from openrisk.marketplace.models import App
from openrisk.marketplace.netguard import UnsafeURL, check_url
from openrisk.marketplace.runtime import MarketplaceRuntime

RISK_EVENTS = ("risk.created", "risk.updated", "risk.deleted", "risk.restored")
SEVERITY_RANK = {"LOW": 0, "MEDIUM": 1, "HIGH": 2, "CRITICAL": 3}


def _json(value: Any) -> bytes:
    return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS)


def event_payload(event: DomainEvent) -> dict[str, Any]:
    """The JSON body of a webhook event (docs/webhooks.md)."""
    return {
        "id": str(event.id),
        "type": event.type,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "tenant_id": str(event.tenant_id) if event.tenant_id else None,
        "resource_type": event.resource,
        "resource_id": str(event.resource_id) if event.resource_id is not None else None,
        "actor_id": str(event.actor_id) if event.actor_id else None,
        "data": event.data,
    }


@dataclass
class SyncRequest:
    session: AsyncSession
    context: RequestContext
    app: App
    configuration: dict[str, Any]  # full configuration, secrets included
    runtime: MarketplaceRuntime
    record: AttemptLogger  # adds an AppLog to ``session`` (committed with the sync)
    uow: UnitOfWork  # the sync's unit of work over ``session`` (the register's import commits it)
    upload: bytes | None = None
    upload_name: str | None = None


@dataclass(frozen=True)
class SyncOutcome:
    status: str  # success | failure
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


class Driver:
    """Default behaviour: validation by schema only, no events, no sync."""

    events: tuple[str, ...] = ()

    async def validate(self, configuration: dict[str, Any], *, runtime: MarketplaceRuntime) -> None:
        """Checks beyond the JSON Schema (raise ValidationFailed naming the field)."""

    def message(self, configuration: dict[str, Any], event: DomainEvent) -> Outgoing | None:
        """What to send for ``event`` (None: nothing)."""
        return None

    async def sync(self, request: SyncRequest) -> SyncOutcome:
        raise Conflict("This connector has no sync action in this release.")


async def _check_url_field(
    configuration: dict[str, Any], name: str, *, runtime: MarketplaceRuntime
) -> None:
    url = configuration.get(name)
    if not isinstance(url, str):
        return
    try:
        await check_url(url, allow_private=runtime.allow_private)
    except UnsafeURL as error:
        raise ValidationFailed.field(f"configuration.{name}", str(error)) from error


def _wanted(configuration: dict[str, Any], event: DomainEvent, default: tuple[str, ...]) -> bool:
    events = configuration.get("events") or list(default)
    return event.type in events


class WebhookDriver(Driver):
    events = RISK_EVENTS

    async def validate(self, configuration: dict[str, Any], *, runtime: MarketplaceRuntime) -> None:
        await _check_url_field(configuration, "url", runtime=runtime)

    def message(self, configuration: dict[str, Any], event: DomainEvent) -> Outgoing | None:
        if not _wanted(configuration, event, RISK_EVENTS):
            return None
        return Outgoing(
            url=configuration["url"],
            body=_json(event_payload(event)),
            event_type=event.type,
            signing_secret=configuration["secret"],
        )

    async def sync(self, request: SyncRequest) -> SyncOutcome:
        """Send one signed ``ping`` event (one attempt, no retry): tests the endpoint."""
        ping = DomainEvent(
            type="ping",
            tenant_id=request.context.tenant_id,
            resource_id=request.app.id,
            data={"app_id": str(request.app.id), "message": "OpenRisk webhook test"},
            actor_id=request.context.user_id,
        )
        payload = event_payload(ping)
        payload["resource_type"] = "app"
        outgoing = Outgoing(
            url=request.configuration["url"],
            body=_json(payload),
            event_type="ping",
            signing_secret=request.configuration["secret"],
        )
        ok = await deliver(outgoing, policy=request.runtime.policy, record=request.record)
        if ok:
            return SyncOutcome(
                "success", "ping delivered", {"delivery_id": str(outgoing.delivery_id)}
            )
        return SyncOutcome("failure", "ping failed: see the app logs")


class SlackDriver(Driver):
    events = RISK_EVENTS

    async def validate(self, configuration: dict[str, Any], *, runtime: MarketplaceRuntime) -> None:
        await _check_url_field(configuration, "webhook_url", runtime=runtime)

    def message(self, configuration: dict[str, Any], event: DomainEvent) -> Outgoing | None:
        if not _wanted(configuration, event, ("risk.created", "risk.updated")):
            return None
        data = event.data
        severity = str(data.get("severity") or "").upper()
        floor = SEVERITY_RANK.get(str(configuration.get("min_severity", "HIGH")), 2)
        if severity in SEVERITY_RANK and SEVERITY_RANK[severity] < floor:
            return None
        verb = event.type.split(".", 1)[1]
        title = str(data.get("title") or event.resource_id)
        details = ", ".join(
            f"{k} {data[k]}" for k in ("severity", "score", "status") if data.get(k) is not None
        )
        text = f":rotating_light: OpenRisk: risk {verb}: *{title}*" + (
            f" ({details})" if details else ""
        )
        body: dict[str, Any] = {"text": text}
        if configuration.get("channel"):
            body["channel"] = configuration["channel"]
        return Outgoing(url=configuration["webhook_url"], body=_json(body), event_type=event.type)

    async def sync(self, request: SyncRequest) -> SyncOutcome:
        outgoing = Outgoing(
            url=request.configuration["webhook_url"],
            body=_json({"text": "OpenRisk: connection test"}),
            event_type="ping",
        )
        ok = await deliver(outgoing, policy=request.runtime.policy, record=request.record)
        return (
            SyncOutcome("success", "test message posted")
            if ok
            else SyncOutcome("failure", "test message failed: see the app logs")
        )


class CsvImportDriver(Driver):
    async def sync(self, request: SyncRequest) -> SyncOutcome:
        if request.upload is not None:
            content, source = request.upload, request.upload_name or "upload"
        elif request.configuration.get("csv_text"):
            content, source = str(request.configuration["csv_text"]).encode(), "configuration"
        else:
            raise ValidationFailed.field(
                "file", "upload a CSV file, or save csv_text in the app configuration"
            )
        from openrisk.marketplace.csv_import import import_csv

        outcome = await import_csv(request, content)
        outcome.data.setdefault("source", source)
        return outcome


DRIVERS: dict[str, Driver] = {
    "webhook": WebhookDriver(),
    "slack": SlackDriver(),
    "csv-import": CsvImportDriver(),
}
CATALOGUE_ONLY = Driver()


def driver_for(connector_id: str) -> Driver:
    return DRIVERS.get(connector_id, CATALOGUE_ONLY)


def notifier_ids() -> list[str]:
    return [cid for cid, driver in DRIVERS.items() if driver.events]
