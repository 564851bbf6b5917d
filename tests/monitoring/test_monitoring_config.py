"""Static checks of the monitoring stack in deploy/.

Prometheus, Alertmanager and Grafana files are validated with the real tools (promtool and
amtool, from the Debian packages ``prometheus`` and ``prometheus-alertmanager``); the rest are
consistency checks between the files, the app's metric names and docs/monitoring.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
MONITORING = DEPLOY / "monitoring"
PROMETHEUS_YML = MONITORING / "prometheus.yml"
ALERTS_YML = MONITORING / "alerts.yml"
ALERTS_TEST_YML = MONITORING / "tests" / "alerts_test.yml"
ALERTMANAGER_YML = MONITORING / "alertmanager.yml"
GRAFANA = MONITORING / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
RUNBOOK = REPO / "docs" / "monitoring.md"
SCRIPTS = REPO / "scripts"

# Debian package that ships each tool; .ci/run installs them.
TOOL_PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}

# The app's metrics, plus the pool wait/timeout counters of openrisk.core.metrics.
APP_METRICS = {
    "openrisk_http_requests_total",
    "openrisk_http_request_duration_seconds",
    "openrisk_http_requests_in_progress",
    "openrisk_cache_requests_total",
    "openrisk_cache_errors_total",
    "openrisk_cache_invalidations_total",
    "openrisk_db_pool_connections",
    "openrisk_db_pool_max_connections",
    "openrisk_db_query_duration_seconds",
    "openrisk_db_up",
    "openrisk_permission_checks_total",
    "openrisk_build_info",
    "openrisk_db_pool_waits_total",
    "openrisk_db_pool_timeouts_total",
    "openrisk_jobs_total",
    "openrisk_job_duration_seconds",
    "openrisk_outbox_pending",
    "openrisk_outbox_oldest_pending_seconds",
    "openrisk_job_queue_depth",
    "openrisk_job_oldest_pending_seconds",
    "openrisk_jobs_dead",
}
HISTOGRAMS = {
    "openrisk_http_request_duration_seconds",
    "openrisk_db_query_duration_seconds",
    "openrisk_job_duration_seconds",
}
# Counters whose names do not end in _total, and gauges whose names look like counters.
EXTRA_COUNTERS = {"pg_stat_database_xact_commit", "pg_stat_database_xact_rollback"}
NOT_COUNTERS = {"pg_stat_activity_count"}
METRIC_NAME = re.compile(r"(?<![\w:$.])((?:openrisk|redis|pg)_[a-z0-9_]+|up)\b(\{[^}]*\})?(\[)?")

# Grafana macros and variables that are not PromQL, replaced before parsing.
GRAFANA_DURATIONS = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__interval_ms": "60000",
    "__range_ms": "3600000",
}
GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


# --------------------------------------------------------------------------- helpers


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _find_tool(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None
    )
    if found:
        return found
    package = TOOL_PACKAGES[name]
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} not installed; .ci/run must install Debian package {package}")
    pytest.skip(f"{name} not installed (Debian package {package}: apt-get install {package})")


@pytest.fixture(scope="session")
def promtool() -> str:
    return _find_tool("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return _find_tool("amtool")


def _run(args: list[str], *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, timeout=120, env=env, check=False
    )


def _assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, (
        f"{' '.join(proc.args)} exited {proc.returncode}\n"
        f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )


def _alert_rules() -> list[dict[str, Any]]:
    groups = _load_yaml(ALERTS_YML)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _alert_names() -> list[str]:
    return sorted({rule["alert"] for rule in _alert_rules()})


def _walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _walk_panels(panel.get("panels", []))  # panels of (collapsed) rows


def _dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) for every Prometheus query of every dashboard."""
    queries = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in _walk_panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    queries.append((path.name, panel.get("title", "?"), target["expr"]))
    return queries


def _as_promql(expr: str) -> str:
    """Replace Grafana macros (durations) and template variables (regex matchers)."""

    def substitute(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return GRAFANA_DURATIONS.get(name, ".*")

    return GRAFANA_VARIABLE.sub(substitute, expr)


def _all_promql() -> list[tuple[str, str]]:
    """(where, expr) for every alert expression and dashboard query."""
    exprs = [(f"alert {rule['alert']}", rule["expr"]) for rule in _alert_rules()]
    exprs += [(f"{file} panel {title!r}", _as_promql(e)) for file, title, e in _dashboard_queries()]
    return exprs


def _github_anchor(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


# --------------------------------------------------------------------------- promtool / amtool


@pytest.mark.promtool
def test_prometheus_config_is_valid(promtool: str) -> None:
    proc = _run([promtool, "check", "config", str(PROMETHEUS_YML)])
    _assert_ok(proc)
    # rule_files are resolved relative to prometheus.yml: the rules must have been checked too.
    assert "alerts.yml" in proc.stdout + proc.stderr


@pytest.mark.promtool
def test_alert_rules_are_valid(promtool: str) -> None:
    _assert_ok(_run([promtool, "check", "rules", str(ALERTS_YML)]))


@pytest.mark.promtool
def test_alert_rule_unit_tests_pass(promtool: str) -> None:
    _assert_ok(_run([promtool, "test", "rules", str(ALERTS_TEST_YML)]))


@pytest.mark.promtool
def test_alertmanager_config_is_valid(amtool: str) -> None:
    _assert_ok(_run([amtool, "check-config", str(ALERTMANAGER_YML)]))


@pytest.mark.promtool
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=OpenRiskDown"], "critical"),
        (["severity=warning", "alertname=LowCacheHitRate"], "warning"),
    ],
)
def test_alertmanager_routes_by_severity(amtool: str, labels: list[str], receiver: str) -> None:
    proc = _run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}", *labels])
    _assert_ok(proc)
    assert proc.stdout.strip() == receiver


@pytest.mark.promtool
def test_dashboard_queries_parse(promtool: str, tmp_path: Path) -> None:
    queries = _dashboard_queries()
    assert queries, "no Grafana dashboard queries found"
    rules = [
        {"record": f"dashboard_expr_{i}", "expr": _as_promql(expr)}
        for i, (_, _, expr) in enumerate(queries)
    ]
    rules_file = tmp_path / "dashboard_rules.yml"
    rules_file.write_text(
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, sort_keys=False),
        encoding="utf-8",
    )
    proc = _run([promtool, "check", "rules", str(rules_file)])
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        failing = sorted({int(n) for n in re.findall(r"dashboard_expr_(\d+)", output)})
        named = "\n".join(
            f"  {queries[i][0]} panel {queries[i][1]!r}: {queries[i][2]}" for i in failing
        )
        pytest.fail(f"dashboard queries do not parse:\n{named or '(unknown)'}\n{output}")


@pytest.mark.promtool
def test_monitoring_up_config_passes_promtool(promtool: str, tmp_path: Path) -> None:
    state = _monitoring_up_config_only(tmp_path)
    _assert_ok(_run([promtool, "check", "config", str(state / "prometheus.yml")]))


# --------------------------------------------------------------------------- alert rules


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in _load_yaml(ALERTS_TEST_YML)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    problems = [
        f"{name}: no {kind} case in {ALERTS_TEST_YML.relative_to(REPO)}"
        for name in _alert_names()
        for kind, covered in (("firing", firing), ("silent", silent))
        if name not in covered
    ]
    unknown = (firing | silent) - set(_alert_names())
    assert not problems, "\n".join(problems)
    assert not unknown, f"unit tests for alerts not in alerts.yml: {sorted(unknown)}"


def test_required_alerts_exist() -> None:
    required = {
        "LowCacheHitRate",
        "HighRedisMemory",
        "HighDatabaseConnections",
        "SlowDatabaseQueries",
        "HighErrorRate",
        "HighLatencyP95",
        "OpenRiskDown",
        "JobQueueBacklog",
        "JobDeadLetters",
        "OutboxStuck",
    }
    assert required <= set(_alert_names())


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_labels_and_annotations(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["labels"]["service"] in {"openrisk", "redis", "postgres"}
    annotations = rule["annotations"]
    assert {"summary", "description", "runbook_url"} <= set(annotations)
    assert annotations["runbook_url"] == f"docs/monitoring.md#{rule['alert'].lower()}"


def test_runbook_has_a_section_per_alert() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    anchors = {_github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.M)}
    anchors |= set(re.findall(r'<a (?:id|name)="([^"]+)"', text))
    missing = {
        rule["annotations"]["runbook_url"]
        for rule in _alert_rules()
        if rule["annotations"]["runbook_url"].partition("#")[2] not in anchors
    }
    assert not missing, f"runbook anchors missing from docs/monitoring.md: {sorted(missing)}"


def test_high_redis_memory_is_guarded_against_unset_maxmemory() -> None:
    [rule] = [r for r in _alert_rules() if r["alert"] == "HighRedisMemory"]
    compact = re.sub(r"\s+", "", rule["expr"])
    assert "(redis_memory_max_bytes>0)" in compact or "andredis_memory_max_bytes>0" in compact


def test_alertmanager_inhibitions() -> None:
    config = _load_yaml(ALERTMANAGER_YML)
    receivers = {r["name"] for r in config["receivers"]}
    assert {"critical", "warning"} <= receivers
    inhibit = config["inhibit_rules"]
    assert any(
        'severity="critical"' in rule.get("source_matchers", [])
        and 'severity="warning"' in rule.get("target_matchers", [])
        and {"alertname", "instance"} <= set(rule.get("equal", []))
        for rule in inhibit
    ), "critical must inhibit warning of the same alertname/instance"
    assert any(
        'alertname="OpenRiskDown"' in rule.get("source_matchers", [])
        and 'service="openrisk"' in rule.get("target_matchers", [])
        for rule in inhibit
    ), "OpenRiskDown must inhibit the other OpenRisk alerts"


# --------------------------------------------------------------------------- PromQL hygiene


def _references() -> Iterator[tuple[str, str, bool]]:
    """(where, metric name, followed by a range selector) for every metric reference."""
    for where, expr in _all_promql():
        without_strings = re.sub(r'"[^"]*"', '""', expr)
        for match in METRIC_NAME.finditer(without_strings):
            yield where, match.group(1), match.group(3) is not None


def _is_counter(name: str) -> bool:
    if name in NOT_COUNTERS:
        return False
    return name in EXTRA_COUNTERS or name.endswith(("_total", "_bucket", "_sum", "_count"))


def test_counters_are_rated_and_gauges_are_not() -> None:
    problems = []
    for where, name, ranged in _references():
        if _is_counter(name) and not ranged:
            problems.append(f"{where}: counter {name} used without rate()/increase()")
        if not _is_counter(name) and ranged:
            problems.append(f"{where}: gauge {name} used with a range selector (rate of a gauge?)")
    assert not problems, "\n".join(problems)


def test_only_existing_app_metrics_are_referenced() -> None:
    unknown = set()
    for where, name, _ in _references():
        if not name.startswith("openrisk_"):
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in APP_METRICS and not (base in HISTOGRAMS and base != name):
            unknown.add(f"{where}: {name}")
    assert not unknown, "unknown OpenRisk metrics:\n" + "\n".join(sorted(unknown))


# --------------------------------------------------------------------------- Grafana


def test_dashboards_exist() -> None:
    assert "openrisk.json" in [p.name for p in DASHBOARDS]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    assert dashboard.get("id") is None, "provisioned dashboards must not carry a database id"
    panels = list(_walk_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    occupied: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in occupied, f"{panel['title']} overlaps {occupied[(x, y)]}"
                occupied[(x, y)] = panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), f"panel {panel['title']!r} has an empty query"
        uid = panel["datasource"]["uid"]
        assert panel["datasource"]["type"] == "prometheus"
        match = GRAFANA_VARIABLE.fullmatch(uid)
        assert match is None or next(g for g in match.groups() if g) in variables, uid


def test_dashboard_covers_spec() -> None:
    exprs = [re.sub(r"\s+", "", expr) for _, _, expr in _dashboard_queries()]
    text = "\n".join(exprs)
    bucket = "rate(openrisk_http_request_duration_seconds_bucket[5m])"
    required = {
        "request rate": "rate(openrisk_http_requests_total[5m])",
        "p50": f"histogram_quantile(0.50,sumby(le)({bucket}))",
        "p95": f"histogram_quantile(0.95,sumby(le)({bucket}))",
        "p99": f"histogram_quantile(0.99,sumby(le)({bucket}))",
        "error rate": 'openrisk_http_requests_total{status=~"5.."}',
        "cache hit ratio": 'sum(rate(openrisk_cache_requests_total{result="hit"}[5m]))/sum(rate('
        'openrisk_cache_requests_total{result=~"hit|miss"}[5m]))',
        "cache errors": "rate(openrisk_cache_errors_total[5m])",
        "pool usage": "sumby(state)(openrisk_db_pool_connections)",
        "db up": "openrisk_db_up",
        "permission checks": "rate(openrisk_permission_checks_total[5m])",
        "redis memory ratio": "redis_memory_used_bytes/(redis_memory_max_bytes>0)",
        "redis ops": "rate(redis_commands_processed_total[5m])",
        "redis clients": "redis_connected_clients",
        "postgres connections": "pg_stat_activity_count",
        "postgres commits": "rate(pg_stat_database_xact_commit[5m])",
        "postgres up": "pg_up",
    }
    missing = [topic for topic, needle in required.items() if needle not in text]
    assert not missing, f"dashboard lacks: {missing}"


def test_grafana_provisioning_matches_compose() -> None:
    datasources = _load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = _load_yaml(GRAFANA / "provisioning" / "dashboards" / "dashboards.yml")
    [provider] = providers["providers"]
    grafana = _load_yaml(DEPLOY / "docker-compose.yml")["services"]["grafana"]
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in grafana["volumes"]}
    assert mounts["./monitoring/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"


# --------------------------------------------------------------------------- compose, Dockerfile


def test_compose_stack() -> None:
    compose = _load_yaml(DEPLOY / "docker-compose.yml")
    services = compose["services"]
    assert {
        "migrate",
        "app",
        "worker",
        "postgres",
        "redis",
        "prometheus",
        "alertmanager",
        "grafana",
        "redis_exporter",
        "postgres_exporter",
    } <= set(services)
    assert services["migrate"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["app"]["image"] == services["migrate"]["image"]
    env = services["app"]["environment"]
    # the app's role is not the image's superuser (tests/integration/test_deploy_roles.py)
    assert env["OPENRISK_DATABASE_URL"] == (
        "postgresql+asyncpg://openrisk_app:${OPENRISK_APP_DB_PASSWORD:-openrisk_app}"
        "@postgres:5432/openrisk"
    )
    assert env["OPENRISK_CACHE_BACKEND"] == "redis"
    assert env["OPENRISK_REDIS_URL"] == "redis://redis:6379/0"
    assert env["OPENRISK_ENV"] == "production"
    assert env["OPENRISK_JWT_SECRET"].startswith("${OPENRISK_JWT_SECRET")
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert "--maxmemory" in services["redis"]["command"]
    assert services["redis_exporter"]["image"].startswith("oliver006/redis_exporter")
    assert services["postgres_exporter"]["image"].startswith(
        "prometheuscommunity/postgres-exporter"
    )
    # Every scrape target of prometheus.yml is a compose service.
    scrape = _load_yaml(PROMETHEUS_YML)["scrape_configs"]
    hosts = {
        t.split(":")[0] for job in scrape for sc in job["static_configs"] for t in sc["targets"]
    }
    assert hosts <= set(services), hosts - set(services)
    # The rules file is mounted next to prometheus.yml (rule_files is relative).
    volumes = services["prometheus"]["volumes"]
    assert "./monitoring/alerts.yml:/etc/prometheus/alerts.yml:ro" in volumes
    # Unauthenticated monitoring UIs are published on the host's loopback only.
    for name in ("prometheus", "alertmanager", "grafana"):
        for port in services[name].get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"


def test_dockerfile() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "pip install ." in text
    assert "openrisk db upgrade && " in text
    assert "openrisk serve --host 0.0.0.0 --workers 2" in text


# --------------------------------------------------------------------------- scripts


def _monitoring_up_config_only(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    env = {
        **os.environ,
        "MONITORING_STATE_DIR": str(state),
        "OPENRISK_METRICS_TARGET": "127.0.0.1:18123",
        "MONITORING_PROMETHEUS_PORT": "19990",
        "MONITORING_REDIS_EXPORTER_PORT": "19991",
        "MONITORING_EXPORTERS": "redis,postgres",
    }
    _assert_ok(_run([str(SCRIPTS / "monitoring-up"), "--config-only"], env=env))
    return state


@pytest.mark.parametrize("name", ["monitoring-up", "monitoring-down"])
def test_scripts_are_executable_bash(name: str) -> None:
    script = SCRIPTS / name
    assert os.access(script, os.X_OK), f"{script} is not executable"
    assert script.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
    _assert_ok(_run(["bash", "-n", str(script)]))


def test_monitoring_up_generates_a_loopback_config(tmp_path: Path) -> None:
    state = _monitoring_up_config_only(tmp_path)
    config = _load_yaml(state / "prometheus.yml")
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets["openrisk"] == ["127.0.0.1:18123"]
    assert targets["prometheus"] == ["127.0.0.1:19990"]
    assert targets["redis"] == ["127.0.0.1:19991"]
    assert targets["postgres"] == ["127.0.0.1:9187"]
    alertmanagers = [
        t
        for am in config["alerting"]["alertmanagers"]
        for sc in am["static_configs"]
        for t in sc["targets"]
    ]
    for target in [*alertmanagers, *(t for ts in targets.values() for t in ts)]:
        assert target.startswith("127.0.0.1:"), target
    assert (state / config["rule_files"][0]).read_text() == ALERTS_YML.read_text()
    assert not list((state / "pids").iterdir()), "--config-only must not start anything"


def test_monitoring_up_leaves_out_exporters_that_do_not_run(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MONITORING_STATE_DIR": str(tmp_path / "state"),
        "MONITORING_EXPORTERS": "none",
    }
    _assert_ok(_run([str(SCRIPTS / "monitoring-up"), "--config-only"], env=env))
    config = _load_yaml(tmp_path / "state" / "prometheus.yml")
    assert [job["job_name"] for job in config["scrape_configs"]] == [
        "openrisk",
        "prometheus",
        "alertmanager",
    ]


def test_monitoring_down_without_state_is_a_no_op(tmp_path: Path) -> None:
    env = {**os.environ, "MONITORING_STATE_DIR": str(tmp_path / "absent")}
    proc = _run([str(SCRIPTS / "monitoring-down")], env=env)
    _assert_ok(proc)
    assert "nothing to stop" in proc.stdout
