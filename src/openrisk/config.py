"""One typed settings object, read from ``OPENRISK_*`` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from limits import parse_many
from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_JWT_SECRET = "openrisk-development-secret-do-not-use-in-production"
MIN_PRODUCTION_SECRET_LENGTH = 32


class TenantCreation(StrEnum):
    ANYONE = "anyone"
    SUPERUSER = "superuser"


# The general API rate limit where OPENRISK_RATE_LIMIT_PER_* is not set (development: off).
RATE_LIMIT_DEFAULTS: dict[str, tuple[str, str]] = {
    "development": ("", ""),
    "staging": ("1200/minute", "600/minute"),
    "production": ("1200/minute", "600/minute"),
}
LIMIT_FIELDS = (
    "login_limit_account_ip",
    "login_limit_ip",
    "rate_limit_per_token",
    "rate_limit_per_ip",
    "tenant_creation_limit",
    "signup_limit_per_ip",
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


@dataclass(frozen=True)
class PoolProfile:
    max_open: int
    max_idle: int
    lifetime_s: int
    max_idle_time_s: int


POOL_PROFILES: dict[Environment, PoolProfile] = {
    Environment.DEVELOPMENT: PoolProfile(
        max_open=10, max_idle=2, lifetime_s=600, max_idle_time_s=120
    ),
    Environment.STAGING: PoolProfile(
        max_open=50, max_idle=10, lifetime_s=1800, max_idle_time_s=300
    ),
    Environment.PRODUCTION: PoolProfile(
        max_open=100, max_idle=25, lifetime_s=3600, max_idle_time_s=600
    ),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENRISK_", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: str = "INFO"
    log_json: bool | None = None  # None: JSON lines, or readable lines on a terminal

    database_url: str = "sqlite+aiosqlite:///./openrisk.db"
    # Pool settings; None means "take it from the profile of OPENRISK_ENV".
    pool_max_open: int | None = Field(default=None, ge=1)
    pool_max_idle: int | None = Field(default=None, ge=0)
    pool_lifetime_s: int | None = Field(default=None, ge=1)
    pool_max_idle_time_s: int | None = Field(default=None, ge=1)
    pool_timeout_s: float = Field(default=5.0, gt=0)
    pool_pre_ping_after_s: float = Field(default=10.0, ge=0)
    pool_health_interval_s: float = Field(default=15.0, gt=0)
    check_schema_on_start: bool = True
    # Once started, the objects alive (modules, routes, schemas, table metadata: some 240,000)
    # are frozen out of the garbage collector's reach, so that a full collection no longer
    # walks them all: that took about 200 ms at 100k risks, every few thousand requests, in
    # which the worker answered nothing; 15 ms once frozen. Off in tests that start many apps
    # in one process (frozen cycles are never collected).
    freeze_heap_on_start: bool = True
    # Every database statement is bounded in time (PostgreSQL; core/db/timeouts.py): the server
    # cancels a statement running longer than this, and the client gives up one second later
    # and drops the connection (a server that stops answering without closing connections).
    # Either way the request is answered 503 with Retry-After. 0 turns both off. The bulk seed
    # and benchmarks run without this bound.
    db_statement_timeout_s: float = Field(default=5.0, ge=0, le=3600)
    # Opening a connection (TCP, TLS, start-up and authentication) fails after this long.
    db_connect_timeout_s: float = Field(default=3.0, gt=0, le=600)
    # TCP keepalives on both ends of every connection (client socket options and the server's
    # tcp_keepalives_*): a peer that vanished is detected after idle + interval × count.
    db_keepalive_idle_s: int = Field(default=10, ge=1, le=7200)
    db_keepalive_interval_s: int = Field(default=5, ge=1, le=600)
    db_keepalive_count: int = Field(default=3, ge=1, le=50)
    # PostgreSQL's max_parallel_workers_per_gather for the app's connections. A request's
    # statements are short: starting parallel workers took ~6 ms of a 9 ms list page at 100,000
    # risks (2 ms without), more than they saved. Raise it on a host with many cores whose
    # reports scan large registers.
    db_parallel_workers: int = Field(default=0, ge=0, le=64)

    # A list's `total` is exact up to this many matches; beyond it, on PostgreSQL, it is the
    # planner's estimate (flagged `total_is_estimate`): counting every match of a broad filter
    # exactly cost more than the page itself at 100,000 risks (docs/performance.md).
    list_exact_count_limit: int = Field(default=1_000, ge=1, le=10_000_000)

    # The outbox relay's poll (event rows left by any process) and the sweeper of
    # invalidations whose generation bump failed (core/outbox.py), in seconds.
    outbox_interval_s: float = Field(default=2.0, gt=0, le=300)

    # The job engine (core/jobs/, docs/architecture.md "Background jobs"). Whether this web
    # process also runs jobs: None = yes on SQLite (the embedded default needs no worker), no
    # on PostgreSQL (web processes only enqueue; `openrisk worker` runs them).
    jobs_in_process: bool | None = None
    jobs_concurrency: int = Field(default=10, ge=1, le=500)  # jobs run at once per worker
    # A worker's heartbeat; a worker silent for `jobs_stalled_after_s` is presumed dead and the
    # jobs it was running are retried by the others (checked every `jobs_stalled_check_s`).
    jobs_heartbeat_s: float = Field(default=10.0, gt=0, le=600)
    jobs_stalled_after_s: float = Field(default=30.0, gt=0, le=3600)
    jobs_stalled_check_s: float = Field(default=15.0, gt=0, le=3600)
    # On SIGTERM a worker takes no new job and waits this long for the running ones; those
    # still running then are released (retried by another worker).
    jobs_shutdown_timeout_s: float = Field(default=20.0, ge=0, le=3600)
    # Fallback poll for new jobs (PostgreSQL LISTEN/NOTIFY wakes workers at once).
    jobs_poll_s: float = Field(default=5.0, gt=0, le=300)
    # Embedded (SQLite) relay: how long an outbox row stays leased to the process running its
    # jobs without being renewed (after a crash, another start takes it up after this).
    jobs_lease_s: float = Field(default=30.0, gt=0, le=3600)

    cache_backend: str = "memory"
    cache_enabled: bool = True
    redis_url: str = "redis://127.0.0.1:6379/0"
    cache_memory_max_entries: int = Field(default=50_000, ge=1)
    cache_memory_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    # Two levels: with a shared backend (redis, custom), answers are also kept in process
    # memory; the generations are still read from the shared cache on every hit,
    # so a write in another process is seen at once (read-your-writes).
    cache_local_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)  # 0: one level
    cache_local_max_entries: int = Field(default=20_000, ge=1)
    # After this many consecutive failures of the shared cache, stop calling it for
    # cache_breaker_reset_s seconds (then one trial call).
    cache_breaker_threshold: int = Field(default=5, ge=1)
    cache_breaker_reset_s: float = Field(default=5.0, gt=0, le=300)
    # Repeated authorised GETs answered from the cache before routing (core/cache/hot_path.py).
    cache_hot_path: bool = True
    # Per-namespace TTL overrides in seconds (None: the TTL the cached read declares; 0: not
    # cached). Every declared read has one (tests/core/cache/test_declared_reads.py).
    cache_ttl_risk_list: int | None = Field(default=None, ge=0)
    cache_ttl_risk_detail: int | None = Field(default=None, ge=0)
    cache_ttl_risk_search: int | None = Field(default=None, ge=0)
    cache_ttl_risk_matrix: int | None = Field(default=None, ge=0)
    cache_ttl_dashboard_stats: int | None = Field(default=None, ge=0)
    cache_ttl_dashboard_matrix: int | None = Field(default=None, ge=0)
    cache_ttl_dashboard_timeline: int | None = Field(default=None, ge=0)
    cache_ttl_dashboard_top_risks: int | None = Field(default=None, ge=0)
    cache_ttl_dashboard_quantitative: int | None = Field(default=None, ge=0)
    cache_ttl_connector_list: int | None = Field(default=None, ge=0)
    cache_ttl_connector_detail: int | None = Field(default=None, ge=0)
    cache_ttl_app_detail: int | None = Field(default=None, ge=0)

    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_algorithm: str = "HS256"
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=14, ge=1)
    allow_signup: bool = True
    # Login throttling (limits syntax, ";"-separated tiers: each later tier is a longer backoff).
    # Attempts per (account, client address), exact and atomic; cleared by a successful login.
    login_limit_account_ip: str = "5/minute;20/hour;100/day"
    # Failed attempts per client address, whatever the account.
    login_limit_ip: str = "50/minute;500/hour"
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated addresses
    # or networks, "*" for any); empty: none, the peer address is the client address.
    trusted_proxies: str = ""
    # General API rate limit, per credential (Authorization) and per address for anonymous
    # requests; None takes the environment's default (off in development), "" turns it off.
    rate_limit_per_token: str | None = None
    rate_limit_per_ip: str | None = None
    # Who may create tenants with POST /tenants: anyone signed in, or platform operators only;
    # None: anyone while sign-up is on (sign-up creates a tenant anyway), else superusers.
    tenant_creation: TenantCreation | None = None
    tenant_creation_limit: str = "10/hour"  # per user
    signup_limit_per_ip: str = "20/hour"  # each sign-up creates a tenant too

    demo_password: str | None = None
    # web UI session cookie: lifetime, and the Secure flag (also set whenever served over https)
    web_session_hours: int = Field(default=12, ge=1, le=24 * 30)
    web_cookie_secure: bool = False
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # POST /risks/import: a file of up to 100,000 rows with every exported column fits
    max_import_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    secret_key: str = DEFAULT_JWT_SECRET  # encrypts connector secrets at rest
    webhook_allow_private: bool = False
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    webhook_max_attempts: int = Field(default=5, ge=1, le=20)
    webhook_backoff_s: float = Field(default=2.0, ge=0, le=600)  # first retry; doubles each time

    # E-mail notifications (notifications/): invitations, mitigation due dates, review and
    # acceptance reminders. None: no e-mail is sent. smtp://[user:password@]host[:port]
    # (STARTTLS when the relay offers it; ?starttls=required|off), or smtps://host[:465].
    smtp_url: str | None = None
    smtp_from: str = "OpenRisk <openrisk@localhost>"
    smtp_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # The address people open OpenRisk at: the links in e-mails start with it.
    public_url: str = "http://127.0.0.1:8000"
    # Reminders: a mitigation this many days before its due date, an acceptance this many days
    # before it expires (a review is "due soon" within 14 days, as in the register).
    notify_mitigation_due_days: int = Field(default=7, ge=0, le=365)
    notify_acceptance_days: int = Field(default=14, ge=0, le=365)
    # Scheduled connector syncs: seconds per unit of an app's sync_interval_s (tests shorten
    # it; production keeps 1).
    sync_interval_unit_s: float = Field(default=1.0, gt=0, le=1.0)
    # When the workers look for due syncs and for reminders to send (cron; a 6th field is
    # seconds). Each tick runs once across all workers.
    sync_tick_cron: str = "* * * * *"
    reminders_cron: str = "7 * * * *"
    # A report request on a register with more live risks than this answers 202 and the
    # report is generated by a job (0: always a job).
    report_async_threshold: int = Field(default=5_000, ge=0)
    # A change of the risk model of a register with more live risks than this answers 202
    # and is applied by a job (0: always a job), whose statements may run this long.
    risk_model_async_threshold: int = Field(default=5_000, ge=0)
    risk_model_job_timeout_s: float = Field(default=600.0, ge=0, le=3600)

    @field_validator("smtp_url")
    @classmethod
    def _valid_smtp_url(cls, value: str | None) -> str | None:
        """Refuse at start-up an SMTP URL that cannot be used (the message names no password)."""
        if value is None or not value.strip():
            return None
        from openrisk.notifications.smtp import SmtpTarget

        SmtpTarget.parse(value.strip())
        return value.strip()

    @field_validator("sync_tick_cron", "reminders_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        import croniter  # type: ignore[import-untyped]

        if not croniter.croniter.is_valid(value):
            raise ValueError("not a cron schedule like '* * * * *'")
        return value

    @field_validator("public_url")
    @classmethod
    def _valid_public_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator(*LIMIT_FIELDS)
    @classmethod
    def _valid_limits(cls, value: str | None) -> str | None:
        """Refuse at start-up what ``limits`` cannot parse (e.g. "5/minute;20/hour")."""
        if value and value.strip():
            try:
                parse_many(value)
            except ValueError as error:
                raise ValueError(f"not a rate limit like '5/minute;20/hour': {value!r}") from error
        return value

    @property
    def tenant_creation_policy(self) -> TenantCreation:
        if self.tenant_creation is not None:
            return self.tenant_creation
        return TenantCreation.ANYONE if self.allow_signup else TenantCreation.SUPERUSER

    @property
    def api_rate_limits(self) -> tuple[str, str]:
        """(per credential, per address) of the general API limit, defaults filled in."""
        per_token, per_ip = RATE_LIMIT_DEFAULTS[self.env.value]
        return (
            per_token if self.rate_limit_per_token is None else self.rate_limit_per_token,
            per_ip if self.rate_limit_per_ip is None else self.rate_limit_per_ip,
        )

    @field_validator("jwt_secret", "secret_key")
    @classmethod
    def _refuse_weak_production_secret(cls, value: str, info: ValidationInfo) -> str:
        """A field validator (not a model one) so that the error names its variable."""
        if info.data.get("env") is Environment.PRODUCTION and (
            value == DEFAULT_JWT_SECRET or len(value) < MIN_PRODUCTION_SECRET_LENGTH
        ):
            raise ValueError(
                f"OPENRISK_{str(info.field_name).upper()} must be set to a random value of at "
                f"least {MIN_PRODUCTION_SECRET_LENGTH} characters in production"
            )
        return value

    @property
    def pool(self) -> PoolProfile:
        profile = POOL_PROFILES[self.env]
        max_open = self.pool_max_open or profile.max_open
        max_idle = profile.max_idle if self.pool_max_idle is None else self.pool_max_idle
        return PoolProfile(
            max_open=max_open,
            max_idle=min(max_idle, max_open),
            lifetime_s=self.pool_lifetime_s or profile.lifetime_s,
            max_idle_time_s=self.pool_max_idle_time_s or profile.max_idle_time_s,
        )

    def cache_ttl(self, namespace: str) -> int | None:
        """The ``OPENRISK_CACHE_TTL_<NAMESPACE>`` override of a cached namespace, if set."""
        value: int | None = getattr(self, ttl_field(namespace), None)
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def runs_jobs_in_process(self) -> bool:
        return self.is_sqlite if self.jobs_in_process is None else self.jobs_in_process


def ttl_field(namespace: str) -> str:
    """`dashboard:top_risks` → `cache_ttl_dashboard_top_risks` (OPENRISK_CACHE_TTL_...)."""
    return "cache_ttl_" + namespace.lower().replace(":", "_").replace("-", "_")


@lru_cache
def get_settings() -> Settings:
    return Settings()
