"""What the simulated users ask for (shared by loadtests/locustfile.py and the warm-up).

Register views are what people keep open: the default view far more than any filter, the
first page far more than later ones. Dashboard periods likewise.
"""

from __future__ import annotations

from typing import Any

API = "/api/v1"

# Most used first; picked with weights 1/(rank+1), the default view twice as often again.
REGISTER_VIEWS: tuple[dict[str, Any], ...] = (
    {},
    {"sort": "score", "order": "desc"},
    {"status": "ACTIVE"},
    {"severity": ["CRITICAL", "HIGH"]},
    {"status": "ACTIVE", "sort": "score", "order": "desc"},
    {"severity": "CRITICAL"},
    {"sort": "updated_at", "order": "desc"},
    {"status": "MITIGATED"},
    {"sort": "title", "order": "asc"},
    {"tag": "ransomware"},
    {"severity": "LOW", "sort": "score", "order": "asc"},
    {"status": "DRAFT"},
)
VIEW_WEIGHTS: tuple[float, ...] = tuple(
    (2.0 if rank == 0 else 1.0) / (rank + 1) for rank in range(len(REGISTER_VIEWS))
)
PAGES: tuple[int, ...] = (1, 2, 3, 4, 5)
PAGE_WEIGHTS: tuple[int, ...] = (70, 15, 8, 4, 3)
SEARCHES: tuple[str, ...] = ("ransomware", "phishing", "backup", "outage", "vendor", "gdpr")
PERIODS: tuple[str, ...] = ("all", "30d", "90d", "7d")
PERIOD_WEIGHTS: tuple[int, ...] = (70, 15, 10, 5)
TIMELINE_DAYS = 30
TOP_RISKS = 10


def dashboard_requests(period: str = "all") -> list[tuple[str, dict[str, Any]]]:
    """The four requests the dashboard page makes."""
    return [
        ("/dashboard/stats", {"period": period}),
        ("/dashboard/matrix", {}),
        ("/dashboard/timeline", {"days": TIMELINE_DAYS}),
        ("/dashboard/top-risks", {"limit": TOP_RISKS}),
    ]


def warm_up_requests() -> list[tuple[str, dict[str, Any]]]:
    """A server that has been up for a while has these answers cached: every dashboard
    period, the first page of every register view, the heatmap and the searches."""
    requests: list[tuple[str, dict[str, Any]]] = []
    for period in PERIODS:
        requests += dashboard_requests(period)[:1] if period != "all" else dashboard_requests()
    requests += [("/risks", dict(view)) for view in REGISTER_VIEWS]
    requests += [("/risks/matrix", {}), ("/risks/matrix", {"status": "ACTIVE"})]
    requests += [("/risks/search", {"q": q}) for q in SEARCHES]
    return requests
