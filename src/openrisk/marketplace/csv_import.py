"""The csv-import connector's sync: hands the CSV to the register's import service.

The register's importer validates every row and writes all of them or none; it commits (or
rolls back) through a unit of work, which records the risk events with the rows. Its 422
(file or row errors) is turned into a failed sync whose data carries the per-row errors, so
the attempt is logged.
"""

from __future__ import annotations

from typing import Any

from openrisk.core.errors import ValidationFailed
from openrisk.marketplace.drivers import SyncOutcome, SyncRequest

MAX_LOGGED_ERRORS = 50


async def import_csv(request: SyncRequest, content: bytes) -> SyncOutcome:
    from openrisk.risks.transfer import import_file

    # importing writes risks: the caller needs the register's permission too, not only
    # connector:sync (a custom role may hold one without the other)
    request.context.require("risk:create")
    dry_run = bool(request.configuration.get("dry_run", False))
    filename = request.upload_name or "import.csv"
    if not filename.lower().endswith((".csv", ".xlsx", ".xlsm")):
        filename += ".csv"
    try:
        result = await import_file(
            uow=request.uow,
            context=request.context,
            filename=filename,
            content=content,
            dry_run=dry_run,
        )
    except ValidationFailed as error:
        errors: list[dict[str, Any]] = list(error.errors or [])
        return SyncOutcome(
            "failure",
            f"import refused: {error.detail}",
            {"errors": errors[:MAX_LOGGED_ERRORS], "error_count": len(errors)},
        )
    data: dict[str, Any] = result.model_dump(mode="json", exclude={"ids", "errors"})
    data["errors"] = [e.model_dump() for e in result.errors[:MAX_LOGGED_ERRORS]]
    verb = "validated" if dry_run else "imported"
    return SyncOutcome(
        "success",
        f"{verb} {result.total_rows} row(s): {result.created} created, {result.updated} updated",
        data,
    )
