"""Per-application marketplace state (``app.state.marketplace``): secret box, delivery policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.config import Settings
from openrisk.core.uow import UnitOfWork
from openrisk.marketplace.crypto import SecretBox
from openrisk.marketplace.delivery import DeliveryPolicy


@dataclass
class MarketplaceRuntime:
    settings: Settings
    box: SecretBox
    # tests may inject an httpx mock transport; None = real network
    transport: httpx.AsyncBaseTransport | None = None
    # the shipped catalogue is upserted at start-up, or on first use if the database was down
    catalogue_ready: bool = False
    # opens the application's unit of work over a session (background writes: delivery
    # status, the catalogue upsert)
    uow_factory: Callable[[AsyncSession], UnitOfWork] = UnitOfWork

    def unit_of_work(self, session: AsyncSession) -> UnitOfWork:
        return self.uow_factory(session)

    @classmethod
    def from_settings(cls, settings: Settings) -> MarketplaceRuntime:
        return cls(settings=settings, box=SecretBox(settings.secret_key))

    @property
    def allow_private(self) -> bool:
        return self.settings.webhook_allow_private

    @property
    def policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(
            allow_private=self.settings.webhook_allow_private,
            timeout_s=self.settings.webhook_timeout_s,
            max_attempts=self.settings.webhook_max_attempts,
            backoff_s=self.settings.webhook_backoff_s,
            transport=self.transport,
        )
