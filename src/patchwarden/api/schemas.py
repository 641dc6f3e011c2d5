"""Request and response bodies of the API. Requests are strict: unknown fields
and out-of-range values are refused with 422 before anything is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from patchwarden.domain.report_schema import AgentReportIn, Hostname, Strict

Text64 = Annotated[str, StringConstraints(max_length=64)]

__all__ = ["AgentReportIn"]


class ErrorOut(BaseModel):
    error: str
    message: str
    details: list[dict[str, Any]] | None = None


# --- agent protocol -------------------------------------------------------------


class EnrollIn(Strict):
    protocol: Literal[1]
    token: Annotated[str, StringConstraints(min_length=8, max_length=128)]
    hostname: Hostname
    machine_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")] | None = None
    agent_version: Text64 = ""


class EnrollOut(BaseModel):
    agent_id: int
    asset_id: int
    credential: str
    report_interval: int
    # The Ed25519 public key (raw, base64) that signs this server's rollout jobs.
    job_signing_key: str
    job_signing_key_id: str


class ReportAckOut(BaseModel):
    status: Literal["accepted"] = "accepted"
    ack_seq: int
    asset_id: int
    report_interval: int
    added: int
    removed: int
    changed: int


# --- users and tokens ------------------------------------------------------------


class LoginIn(Strict):
    username: Annotated[str, StringConstraints(max_length=64)]
    password: Annotated[str, StringConstraints(max_length=1024)]


class TokenCreateIn(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The secret; shown only in this response.")


class LoginOut(BaseModel):
    token: str
    expires_at: datetime | None
    username: str
    role: str


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    is_active: bool
    created_at: datetime


class MeOut(BaseModel):
    id: int
    username: str
    role: str
    permissions: list[str]


class UserCreateIn(Strict):
    username: Annotated[str, StringConstraints(max_length=64)]
    password: Annotated[str, StringConstraints(max_length=1024)]
    role: Literal["admin", "operator", "approver", "auditor", "viewer"]


class UserUpdateIn(Strict):
    role: Literal["admin", "operator", "approver", "auditor", "viewer"] | None = None
    is_active: bool | None = None
    password: Annotated[str, StringConstraints(max_length=1024)] | None = None


# --- enrolment tokens and agents --------------------------------------------------


class EnrollmentTokenCreateIn(Strict):
    ttl_hours: float = Field(default=24, gt=0, le=720)
    note: Annotated[str, StringConstraints(max_length=200)] = ""


class EnrollmentTokenOut(BaseModel):
    id: int
    prefix: str
    note: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by_agent_id: int | None
    revoked_at: datetime | None


class EnrollmentTokenCreatedOut(EnrollmentTokenOut):
    token: str = Field(description="The one-time secret; shown only in this response.")


class AgentOut(BaseModel):
    id: int
    asset_id: int
    hostname: str
    agent_version: str
    created_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None


# --- assets ------------------------------------------------------------------------


class AssetSummaryOut(BaseModel):
    id: int
    hostname: str
    source: str
    device_type: str
    status: str
    os: str | None
    os_id: str | None
    os_version_id: str | None
    os_pretty_name: str | None
    kernel: str | None
    arch: str | None
    criticality: int
    environment: str | None
    owner: str | None
    tags: list[str]
    internet_facing: bool
    package_count: int
    last_seen_at: datetime | None


class AssetListOut(BaseModel):
    total: int
    items: list[AssetSummaryOut]


class AssetDetailOut(AssetSummaryOut):
    fqdn: str | None
    machine_id: str | None
    os_name: str | None
    os_codename: str | None
    os_release: str | None
    boot_time: datetime | None
    reboot_required: bool | None
    ip_addresses: list[str]
    virtualization: str | None
    cloud_provider: str | None
    firmware: dict[str, Any]
    vendor: str | None
    model: str | None
    serial: str | None
    firmware_version: str | None
    business_service: str | None
    region: str | None
    timezone: str | None
    data_sensitivity: str
    collector_notes: list[dict[str, Any]]
    inventory_seq: int
    created_at: datetime
    updated_at: datetime
    agent: dict[str, Any] | None
    ssh: dict[str, Any] | None


class PackageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    version: str
    arch: str
    ecosystem: str
    source_name: str | None
    source_version: str | None
    status: str
    installed_at: datetime
    removed_at: datetime | None


class PackageEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    action: str
    ecosystem: str
    name: str
    arch: str
    old_version: str | None
    new_version: str | None
    report_id: int | None


class InventoryReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    kind: str
    seq: int | None
    received_at: datetime
    package_count: int
    added: int
    removed: int
    changed: int


class SshAssetIn(Strict):
    destination: Annotated[str, StringConstraints(min_length=3, max_length=320)] = Field(
        description="user@host"
    )
    port: int = Field(default=22, ge=1, le=65535)
    key_path: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        default=None, description="Private key file on the server's machine."
    )


class SshCollectionOut(BaseModel):
    asset_id: int
    hostname: str
    host_key_fingerprint: str
    first_use: bool
    package_count: int
    added: int
    removed: int
    changed: int


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str | None
    details: dict[str, Any]
    hash: str


class AuditVerifyOut(BaseModel):
    ok: bool
    events_checked: int
    first_bad_id: int | None
    reason: str | None
