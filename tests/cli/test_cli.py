"""The ``openrisk`` command line as an operator meets it: messages that name the variable, real
reachability checks, the one email rule, install hints that survive Rich markup."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openrisk.cli import app
from openrisk.core.db.migrate import upgrade
from tests.integration.server_process import free_port

runner = CliRunner()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No OPENRISK_* from the caller's shell; a migrated SQLite database of its own."""
    import os

    for name in list(os.environ):
        if name.startswith("OPENRISK_"):
            monkeypatch.delenv(name)
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    monkeypatch.setenv("OPENRISK_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_config_names_the_variable_of_a_bad_value(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENRISK_PORT", "abc")
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 2
    assert "OPENRISK_PORT:" in result.output and "'abc'" in result.output


def test_check_config_names_a_weak_production_secret(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENRISK_ENV", "production")
    monkeypatch.setenv("OPENRISK_SECRET_KEY", "k" * 40)
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 2
    assert "OPENRISK_JWT_SECRET: must be set" in " ".join(result.output.split())
    assert "OPENRISK_:" not in result.output


def test_check_config_passes_when_every_service_answers(clean_env: Path) -> None:
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 0, result.output
    assert "schema current" in result.output
    assert "every service answers" in result.output


def test_check_config_fails_on_an_unreachable_database_and_cache(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = free_port()  # nothing listens there
    monkeypatch.setenv(
        "OPENRISK_DATABASE_URL", f"postgresql+asyncpg://app:hunter2@127.0.0.1:{closed}/openrisk"
    )
    monkeypatch.setenv("OPENRISK_CACHE_BACKEND", "redis")
    monkeypatch.setenv("OPENRISK_REDIS_URL", f"redis://127.0.0.1:{closed}/0")
    result = runner.invoke(app, ["check-config"], terminal_width=200)
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert "configuration is valid" not in output.replace(
        "configuration is valid, but a service it names cannot be used", ""
    )
    assert "cannot be used" in output
    assert output.count(" NO ") == 2
    assert f"127.0.0.1:{closed}" in output
    assert "hunter2" not in output  # the password is redacted


def test_create_admin_refuses_what_is_not_an_email(clean_env: Path) -> None:
    result = runner.invoke(
        app, ["create-admin", "--email", "notanemail", "--password", "long-enough-password"]
    )
    assert result.exit_code == 2
    assert "--email: Enter an email address such as name@example.com." in result.output
    created = runner.invoke(
        app, ["create-admin", "--email", "Ops@Example.com", "--password", "long-enough-password"]
    )
    assert created.exit_code == 0, created.output
    assert "created superuser ops@example.com" in created.output


def test_worker_on_sqlite_says_serve_runs_the_jobs(clean_env: Path) -> None:
    result = runner.invoke(app, ["worker"])
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # Rich wraps long lines
    assert "needs PostgreSQL" in said and "openrisk serve runs the jobs" in said


def test_cache_stats_says_it_cannot_see_a_memory_cache(clean_env: Path) -> None:
    result = runner.invoke(app, ["cache", "stats"])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "cannot see it" in output and "/api/v1/system/cache" in output
    assert "hits" not in output  # no table of zeros pretending to be the server's


def test_the_locust_install_hint_keeps_its_brackets(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locust not importable (as in the ``make run`` virtualenv): the hint names the ``[perf]``
    extra, which Rich markup used to swallow."""
    monkeypatch.setitem(sys.modules, "locust", None)  # find_spec() answers None: not installed
    result = runner.invoke(app, ["loadtest", "--quick"], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert "pip install 'openrisk[perf]'" in " ".join(result.output.split())


def test_cache_stats_reads_the_running_server(clean_env: Path) -> None:
    from tests.integration.server_process import running_server

    made = runner.invoke(
        app, ["create-admin", "--email", "ops@example.com", "--password", "long-enough-password"]
    )
    assert made.exit_code == 0, made.output
    url = str(Path(clean_env / "cli.db"))
    with running_server(clean_env, f"sqlite+aiosqlite:///{url}") as server:
        import httpx

        httpx.get(f"{server.base_url}/api/v1/health", trust_env=False)
        result = runner.invoke(
            app,
            [
                "cache",
                "stats",
                "--server",
                server.base_url,
                "--email",
                "ops@example.com",
                "--password",
                "long-enough-password",
            ],
            terminal_width=200,
        )
    assert result.exit_code == 0, result.output
    assert "backend" in result.output and "memory" in result.output
    assert "hot_path." in result.output  # nested statistics are flattened, not dropped
    wrong = runner.invoke(
        app,
        ["cache", "stats", "--server", server.base_url, "--email", "ops@example.com"],
        input="not-the-password\n",
    )
    assert wrong.exit_code == 1  # the server is gone, or the sign-in refused: said, not zeros
    assert "cannot read" in wrong.output


def test_the_seed_progress_moves_per_batch(clean_env: Path) -> None:
    import asyncio

    from openrisk.config import Settings
    from openrisk.core.db.engine import create_database
    from openrisk.seed.bulk import progress_batch, seed_bulk

    moves: list[int] = []

    async def run() -> None:
        database = create_database(Settings(), pooled=False)
        try:
            await seed_bulk(
                database,
                risks=1_000,
                tenants=1,
                password="x" * 12,
                seed=3,
                on_progress=moves.append,
            )
        finally:
            await database.dispose()

    asyncio.run(run())
    assert sum(moves) == 1_000
    assert len(moves) == 1_000 // progress_batch(1_000) >= 5


def test_logs_are_readable_on_a_terminal_and_json_otherwise() -> None:
    import json
    import logging

    from openrisk.core.logging import HumanFormatter, JsonFormatter, json_wanted

    record = logging.LogRecord("openrisk.access", logging.INFO, __file__, 1, "request", (), None)
    record.__dict__.update(method="GET", path="/risks", status=200, duration_ms=3.1)
    assert HumanFormatter().format(record).endswith("INFO  GET /risks 200 3.1 ms")
    assert json.loads(JsonFormatter().format(record))["path"] == "/risks"
    assert json_wanted(True) and not json_wanted(False)
    assert json_wanted(None) is not sys.stderr.isatty()


def test_the_smtp_check_greets_a_real_relay_and_names_a_dead_one() -> None:
    """A small SMTP responder on loopback (greeting, EHLO, QUIT): the check says it answers;
    a closed port is reported unreachable with the password masked."""
    import asyncio
    import socket
    import threading

    from openrisk.diagnostics import check_smtp

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rwb") as stream:
            stream.write(b"220 relay.test ESMTP\r\n")
            stream.flush()
            for line in stream:
                if line.upper().startswith((b"EHLO", b"HELO")):
                    stream.write(b"250-relay.test\r\n250 OK\r\n")
                elif line.upper().startswith(b"QUIT"):
                    stream.write(b"221 bye\r\n")
                    stream.flush()
                    return
                else:
                    stream.write(b"502 no\r\n")
                stream.flush()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    answered = asyncio.run(check_smtp(f"smtp://127.0.0.1:{port}"))
    thread.join(5)
    listener.close()
    assert answered.ok and "answers EHLO (250)" in answered.detail
    dead = asyncio.run(check_smtp(f"smtp://mailer:s3cret@127.0.0.1:{free_port()}"))
    assert not dead.ok and "unreachable" in dead.detail and "s3cret" not in dead.detail
    assert asyncio.run(check_smtp(None)).ok


def test_db_upgrade_brings_a_new_database_to_the_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    from openrisk.core.db.migrate import current_revisions, head_revisions

    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    monkeypatch.setenv("OPENRISK_DATABASE_URL", url)
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "database upgraded to heads" in result.output

    async def revisions() -> set[str]:
        engine = create_async_engine(url)
        try:
            return await current_revisions(engine)
        finally:
            await engine.dispose()

    assert asyncio.run(revisions()) == head_revisions()
