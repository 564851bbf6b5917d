from __future__ import annotations

import pytest
from pydantic import ValidationError

from openrisk.config import Environment, Settings


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (Environment.DEVELOPMENT, (10, 2, 600, 120)),
        (Environment.STAGING, (50, 10, 1800, 300)),
        (Environment.PRODUCTION, (100, 25, 3600, 600)),
    ],
)
def test_pool_profiles_follow_the_spec(env: Environment, expected: tuple[int, ...]) -> None:
    secret = "s" * 40
    pool = Settings(env=env, jwt_secret=secret, secret_key=secret).pool
    assert (pool.max_open, pool.max_idle, pool.lifetime_s, pool.max_idle_time_s) == expected


def test_each_pool_value_can_be_overridden() -> None:
    pool = Settings(pool_max_open=7, pool_max_idle=3, pool_lifetime_s=60).pool
    assert (pool.max_open, pool.max_idle, pool.lifetime_s) == (7, 3, 60)


def test_production_refuses_the_default_or_a_short_jwt_secret() -> None:
    with pytest.raises(ValidationError, match="OPENRISK_JWT_SECRET"):
        Settings(env="production", secret_key="k" * 40)
    with pytest.raises(ValidationError, match="OPENRISK_JWT_SECRET"):
        Settings(env="production", jwt_secret="short", secret_key="k" * 40)


def test_environment_variables_are_read_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENRISK_ENV", "staging")
    monkeypatch.setenv("OPENRISK_PORT", "9001")
    settings = Settings()
    assert settings.env is Environment.STAGING and settings.port == 9001
    monkeypatch.setenv("OPENRISK_PORT", "not-a-number")
    with pytest.raises(ValidationError, match="port"):
        Settings()
