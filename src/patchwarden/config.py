"""Settings: one typed object, read from PATCHWARDEN_* environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from patchwarden.errors import ConfigError


def default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "patchwarden"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PATCHWARDEN_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    admin_password: str | None = None
    # "development" allows plain HTTP cookies; "production" insists on safe values.
    environment: str = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # An asset that has not checked in for this long is marked stale.
    stale_after_seconds: int = Field(default=3 * 3600, ge=60)
    # Interval the server suggests to agents between reports.
    agent_interval_seconds: int = Field(default=3600, ge=10)
    enrollment_token_ttl_seconds: int = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)
    session_ttl_seconds: int = Field(default=12 * 3600, ge=300)
    max_report_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_import_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # The Ed25519 key that signs rollout jobs (created on first use; default
    # DATA_DIR/job-signing-key.pem). Several server processes must share one.
    job_signing_key_file: Path | None = None
    # Seconds between two rounds of the rollout engine in each server process.
    rollout_tick_seconds: float = Field(default=2.0, ge=0.05, le=300)
    # Seconds the server suggests to agents between two job polls.
    job_poll_seconds: int = Field(default=60, ge=1, le=3600)
    # Threads of each server process that recompute findings on PostgreSQL
    # (SQLite has one writer: one thread there).
    recompute_workers: int = Field(default=2, ge=1, le=32)

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: str) -> str:
        if value not in {"development", "production"}:
            raise ValueError("environment must be 'development' or 'production'")
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'patchwarden.db'}"

    @property
    def effective_job_signing_key_file(self) -> Path:
        return self.job_signing_key_file or self.data_dir / "job-signing-key.pem"

    def check_safe(self) -> None:
        """Refuse settings that are unsafe outside development."""
        weak_admin_password = self.admin_password is not None and len(self.admin_password) < 12
        if self.environment == "production" and weak_admin_password:
            raise ConfigError("PATCHWARDEN_ADMIN_PASSWORD must have at least 12 characters")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        raise ConfigError(f"invalid PATCHWARDEN_* setting: {exc}") from exc
