"""Every task blueprint, and which outbox events become which jobs: the one place to plug in.

``BLUEPRINTS``: (namespace, blueprint); a task ``name`` declared on a blueprint is deferred and
run as ``"<namespace>:<name>"``. ``EVENT_ROUTES``: (topic prefix, route); the relay hands each
committed domain event to every route whose prefix its topic starts with, in the transaction
that takes the event row, and defers the jobs the route returns (none: the event causes no
background work). An outbox row with topic ``job:<namespace>:<name>`` is deferred as that task
with the row's payload as keyword arguments (``uow.add_event("job:...", {...})``).
"""

from __future__ import annotations

import procrastinate

from openrisk.core.jobs.runtime import Route
from openrisk.marketplace import tasks as marketplace_tasks

BLUEPRINTS: list[tuple[str, procrastinate.Blueprint]] = [
    ("webhooks", marketplace_tasks.blueprint),
]

EVENT_ROUTES: list[tuple[str, Route]] = [
    ("risk.", marketplace_tasks.deliveries_for),
]
