"""OpenRisk load test: viewers browse the register and dashboards, analysts write.

Run it through ``openrisk loadtest --scenario baseline|warm|peak``, which seeds the data set,
starts the server and writes this file's configuration (``OPENRISK_LOADTEST_CONFIG``, JSON):

    {"accounts": [{"email", "password", "role": "viewer"|"analyst"}, ...],
     "risk_ids": [...], "thresholds": {"max_p95_ms", "max_error_rate", "min_hit_rate"},
     "viewer_wait": [min_s, max_s], "analyst_wait": [min_s, max_s],
     "results_path": "where the X-Cache counts and threshold verdicts are written"}

By hand (a server already running, the config written by an earlier ``openrisk loadtest``):
``OPENRISK_LOADTEST_CONFIG=reports/.work/<run>/locust-config.json locust -f loadtests/locustfile.py
--host http://127.0.0.1:8000 --headless -u 10 -r 10 -t 1m``.

Each simulated user signs in once (``on_start``: ``POST /api/v1/auth/login``, argon2 is
deliberately slow) and then sends ``Authorization: Bearer``. Viewers open pages: the dashboard
(stats, matrix, timeline and top risks, as the web page loads them), the register (filters,
sorts and pages, the first page far more often than later ones), a risk (its detail and its
mitigations), the heatmap, a search. Analysts mostly read their own risks and, about one
action in six, create or update a risk or a mitigation of theirs. Thresholds are enforced
at exit (the process exits 1 when one is missed): p95, error rate and, when configured, the
cache hit rate seen in ``X-Cache`` headers.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task
from locust.env import Environment

from openrisk.perf.workload import (
    API,
    PAGE_WEIGHTS,
    PAGES,
    PERIOD_WEIGHTS,
    PERIODS,
    REGISTER_VIEWS,
    SEARCHES,
    VIEW_WEIGHTS,
    dashboard_requests,
)


def _load_config() -> dict[str, Any]:
    path = os.environ.get("OPENRISK_LOADTEST_CONFIG")
    if not path:
        raise RuntimeError(
            "OPENRISK_LOADTEST_CONFIG is not set: run `openrisk loadtest`, or point it at the "
            "locust-config.json an earlier run wrote"
        )
    config: dict[str, Any] = json.loads(Path(path).read_text())
    return config


CONFIG = _load_config()
THRESHOLDS: dict[str, Any] = CONFIG.get("thresholds", {})
RISK_IDS: list[str] = CONFIG.get("risk_ids", [])
_ACCOUNTS: dict[str, Iterator[dict[str, str]]] = {
    role: itertools.cycle([a for a in CONFIG["accounts"] if a["role"] == role])
    for role in ("viewer", "analyst")
}
X_CACHE: Counter[str] = Counter()
X_CACHE_BY_NAME: dict[str, Counter[str]] = {}


def _wait(key: str, default: tuple[float, float]) -> Any:
    low, high = CONFIG.get(key, default)
    return between(float(low), float(high))


class OpenRiskUser(FastHttpUser):
    abstract = True
    role = "viewer"

    def on_start(self) -> None:
        account = next(_ACCOUNTS[self.role])
        self.headers: dict[str, str] = {}
        self.user_id = ""
        self.recent_ids: list[str] = list(RISK_IDS)
        with self.client.post(
            f"{API}/auth/login",
            json={"email": account["email"], "password": account["password"]},
            name="POST /auth/login",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"login failed: HTTP {response.status_code}")
                self.stop()
                return
            body = response.json()
            self.headers = {"Authorization": f"Bearer {body['access_token']}"}
            self.user_id = body["user"]["id"]

    def get(self, path: str, name: str, params: dict[str, Any] | None = None) -> Any:
        return self.client.get(f"{API}{path}", params=params, headers=self.headers, name=name)

    def get_json(self, path: str, name: str, params: dict[str, Any] | None = None) -> Any:
        with self.client.get(
            f"{API}{path}", params=params, headers=self.headers, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return None
            return response.json()

    # pages shared by viewers and analysts

    def open_register(
        self, extra: dict[str, Any] | None = None, name: str = "GET /risks (list)"
    ) -> None:
        view = random.choices(REGISTER_VIEWS, VIEW_WEIGHTS)[0]
        params: dict[str, Any] = {**view, **(extra or {})}
        page = random.choices(PAGES, PAGE_WEIGHTS)[0]
        if page > 1:
            params["page"] = page
        body = self.get_json("/risks", name, params)
        if body and body.get("items"):
            self.recent_ids = [item["id"] for item in body["items"]]

    def open_risk(self, risk_id: str | None = None) -> None:
        risk_id = risk_id or random.choice(self.recent_ids or RISK_IDS)
        self.get(f"/risks/{risk_id}", "GET /risks/{id}")
        self.get(f"/risks/{risk_id}/mitigations", "GET /risks/{id}/mitigations")

    def open_dashboard(self) -> None:
        period = random.choices(PERIODS, PERIOD_WEIGHTS)[0]
        for path, params in dashboard_requests(period):
            self.get(path, f"GET {path}", params)


class Viewer(OpenRiskUser):
    """Reads: the register, risks, the dashboard, the heatmap, search."""

    weight = 4
    role = "viewer"
    wait_time = _wait("viewer_wait", (0.5, 2.0))

    @task(6)
    def register(self) -> None:
        self.open_register()

    @task(5)
    def risk(self) -> None:
        self.open_risk()

    @task(4)
    def dashboard(self) -> None:
        self.open_dashboard()

    @task(1)
    def heatmap(self) -> None:
        params = random.choice(({}, {"status": "ACTIVE"}))
        self.get("/risks/matrix", "GET /risks/matrix", params)

    @task(1)
    def search(self) -> None:
        self.get("/risks/search", "GET /risks/search", {"q": random.choice(SEARCHES)})


class Analyst(OpenRiskUser):
    """Works on their own risks: mostly reads them (and the register and dashboard); about one
    action in six is a write (create or update a risk, add or update a mitigation), each
    after reading and filling in a form, hence the longer think time."""

    weight = 1
    role = "analyst"
    wait_time = _wait("analyst_wait", (3.0, 8.0))

    def on_start(self) -> None:
        super().on_start()
        self.own_risks: dict[str, int] = {}  # id → version
        self.own_mitigations: list[str] = []

    @task(6)
    def my_risks(self) -> None:
        self.open_register({"owner_id": self.user_id}, "GET /risks (my risks)")

    @task(6)
    def risk(self) -> None:
        own = list(self.own_risks)
        self.open_risk(random.choice(own) if own and random.random() < 0.5 else None)

    @task(4)
    def register(self) -> None:
        self.open_register()

    @task(4)
    def dashboard(self) -> None:
        self.open_dashboard()

    @task(1)
    def create_risk(self) -> None:
        body = {
            "title": f"Load-test risk {random.randrange(10**6)} ({self.user_id[:8]})",
            "description": "Created by the OpenRisk load test.",
            "impact": random.randint(1, 5),
            "probability": random.randint(1, 5),
            "status": "ACTIVE",
            "tags": ["loadtest"],
        }
        with self.client.post(
            f"{API}/risks",
            json=body,
            headers=self.headers,
            name="POST /risks",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            created = response.json()
            self.own_risks[created["id"]] = created["version"]

    @task(1)
    def update_risk(self) -> None:
        if not self.own_risks:
            self.create_risk()
            return
        risk_id = random.choice(list(self.own_risks))
        body = {"impact": random.randint(1, 5), "probability": random.randint(1, 5)}
        with self.client.patch(
            f"{API}/risks/{risk_id}",
            json=body,
            headers={**self.headers, "If-Match": f'"{self.own_risks[risk_id]}"'},
            name="PATCH /risks/{id}",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            self.own_risks[risk_id] = response.json()["version"]

    @task(1)
    def add_mitigation(self) -> None:
        if not self.own_risks:
            self.create_risk()
            return
        risk_id = random.choice(list(self.own_risks))
        body = {
            "title": "Load-test mitigation",
            "assignee_id": self.user_id,
            "status": "IN_PROGRESS",
            "progress": 10,
        }
        with self.client.post(
            f"{API}/risks/{risk_id}/mitigations",
            json=body,
            headers=self.headers,
            name="POST /risks/{id}/mitigations",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            self.own_mitigations.append(response.json()["id"])

    @task(1)
    def update_mitigation(self) -> None:
        if not self.own_mitigations:
            self.add_mitigation()
            return
        mitigation_id = random.choice(self.own_mitigations)
        with self.client.patch(
            f"{API}/mitigations/{mitigation_id}",
            json={"progress": random.randint(10, 90)},
            headers=self.headers,
            name="PATCH /mitigations/{id}",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")


@events.request.add_listener
def _count_x_cache(name: str = "", response: Any = None, exception: Any = None, **_: Any) -> None:
    if exception is None and response is not None:
        status = response.headers.get("X-Cache") if response.headers else None
        if status:
            X_CACHE[str(status).upper()] += 1
            X_CACHE_BY_NAME.setdefault(name, Counter())[str(status).upper()] += 1


def verdicts(environment: Environment) -> list[dict[str, Any]]:
    """Each threshold with the measured value and whether it passed."""
    total = environment.stats.total
    results: list[dict[str, Any]] = []
    p95 = total.get_response_time_percentile(0.95) if total.num_requests else 0.0
    limit = float(THRESHOLDS.get("max_p95_ms", 100.0))
    results.append({"name": "p95_ms", "limit": f"< {limit:g}", "value": p95, "passed": p95 < limit})
    error_rate = total.fail_ratio
    limit = float(THRESHOLDS.get("max_error_rate", 0.01))
    results.append(
        {
            "name": "error_rate",
            "limit": f"< {limit:g}",
            "value": error_rate,
            "passed": error_rate < limit,
        }
    )
    if THRESHOLDS.get("min_hit_rate") is not None:
        limit = float(THRESHOLDS["min_hit_rate"])
        lookups = X_CACHE["HIT"] + X_CACHE["MISS"] + X_CACHE["BYPASS"]
        rate = X_CACHE["HIT"] / lookups if lookups else 0.0
        results.append(
            {
                "name": "x_cache_hit_rate",
                "limit": f"> {limit:g}",
                "value": rate,
                "passed": rate > limit,
            }
        )
    return results


@events.quitting.add_listener
def _enforce_thresholds(environment: Environment, **_: Any) -> None:
    results = verdicts(environment)
    if not all(r["passed"] for r in results):
        environment.process_exit_code = 1
    path = CONFIG.get("results_path")
    if path:
        Path(path).write_text(
            json.dumps(
                {
                    "x_cache": dict(X_CACHE),
                    "x_cache_by_endpoint": {n: dict(c) for n, c in X_CACHE_BY_NAME.items()},
                    "thresholds": results,
                    "written_at": time.time(),
                },
                indent=2,
            )
        )
