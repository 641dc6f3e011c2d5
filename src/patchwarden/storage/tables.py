"""SQLAlchemy 2 tables. One schema for SQLite and PostgreSQL.

Installed packages are stored as intervals: a row is created when a package
version is first seen on an asset (`installed_at`) and closed when it goes
(`removed_at`). The current inventory is the rows with no `removed_at`; the
inventory at any moment T is the rows with installed_at <= T < removed_at.
Changes after the first report are also written to `package_events`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite has no 64-bit autoincrement type distinct from INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token for a user: long-lived API tokens and web sessions."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="api")  # api | session
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class EnrollmentToken(Base):
    __tablename__ = "enrollment_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_agent_id: Mapped[int | None]
    revoked_at: Mapped[datetime | None]


class Asset(Base):
    __tablename__ = "assets"
    __table_args__ = (Index("ix_assets_finding_risk_bound", "finding_risk_bound", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), index=True)
    fqdn: Mapped[str | None] = mapped_column(String(255))
    machine_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # agent | ssh | cmdb
    device_type: Mapped[str] = mapped_column(String(32), default="server")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | stale
    # Operating system, from os-release.
    os_id: Mapped[str | None] = mapped_column(String(64))
    os_version_id: Mapped[str | None] = mapped_column(String(64))
    os_name: Mapped[str | None] = mapped_column(String(128))
    os_pretty_name: Mapped[str | None] = mapped_column(String(255))
    os_codename: Mapped[str | None] = mapped_column(String(64))
    os_release: Mapped[str | None] = mapped_column(String(64))
    kernel: Mapped[str | None] = mapped_column(String(255))
    arch: Mapped[str | None] = mapped_column(String(32))
    boot_time: Mapped[datetime | None]
    reboot_required: Mapped[bool | None]
    ip_addresses: Mapped[list[Any]] = mapped_column(default=list)
    virtualization: Mapped[str | None] = mapped_column(String(64))
    cloud_provider: Mapped[str | None] = mapped_column(String(64))
    firmware: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Hardware identity (CMDB or firmware collectors).
    vendor: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    serial: Mapped[str | None] = mapped_column(String(128), index=True)
    firmware_version: Mapped[str | None] = mapped_column(String(128))
    # Business attributes, edited by people.
    criticality: Mapped[int] = mapped_column(Integer, default=3)  # 1 highest .. 4 lowest
    environment: Mapped[str | None] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(128))
    business_service: Mapped[str | None] = mapped_column(String(128))
    region: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    internet_facing: Mapped[bool] = mapped_column(Boolean, default=False)
    data_sensitivity: Mapped[str] = mapped_column(String(16), default="internal")
    # Inventory bookkeeping.
    collector_notes: Mapped[list[Any]] = mapped_column(default=list)
    package_count: Mapped[int] = mapped_column(Integer, default=0)
    last_seen_at: Mapped[datetime | None]
    last_report_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    inventory_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # Set when the inventory changed and findings must be recomputed.
    findings_dirty: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    # Set when advisories of some of its packages changed (names in asset_dirty_names):
    # only those packages are matched again.
    names_dirty: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), index=True
    )
    # Set when only what findings are scored from changed (CVSS, EPSS, KEV, risk
    # weights, SLA policy, the attributes above): re-scored without matching again.
    scores_dirty: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), index=True
    )
    # Set when the inventory or the repositories changed and patches must be recomputed.
    patches_dirty: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    # At least the highest risk of the asset's unfixed findings (set by recomputation,
    # the only writer of risk scores): the fleet's top open risks are read asset by
    # asset in this order, so no index over millions of findings keeps them sorted.
    finding_risk_bound: Mapped[float] = mapped_column(default=0.0, server_default="0")
    # The asset's findings by status, and its open ones by due date ({instant: count},
    # services.finding_counts keys them): kept by recomputation and exceptions, so
    # that the fleet's compliance figures add up assets, not millions of findings.
    open_findings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    excepted_findings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fixed_findings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    open_due_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    earliest_open_due: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agent_version: Mapped[str] = mapped_column(String(32), default="")
    enrollment_token_id: Mapped[int | None] = mapped_column(ForeignKey("enrollment_tokens.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class InstalledPackage(Base):
    __tablename__ = "installed_packages"
    __table_args__ = (
        Index(
            "ix_installed_packages_current",
            "asset_id",
            postgresql_where=text("removed_at IS NULL"),
            sqlite_where=text("removed_at IS NULL"),
        ),
        Index("ix_installed_packages_asset_history", "asset_id", "installed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    ecosystem: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(255))
    arch: Mapped[str] = mapped_column(String(32), default="")
    source_name: Mapped[str | None] = mapped_column(String(255))
    source_version: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(24), default="installed")
    installed_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]


class PackageEvent(Base):
    """A change seen after an asset's first inventory: installed, removed or changed."""

    __tablename__ = "package_events"
    __table_args__ = (Index("ix_package_events_asset_at", "asset_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("inventory_reports.id"))
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(16))  # installed | removed | changed
    ecosystem: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    arch: Mapped[str] = mapped_column(String(32), default="")
    old_version: Mapped[str | None] = mapped_column(String(255))
    new_version: Mapped[str | None] = mapped_column(String(255))


class InventoryReport(Base):
    __tablename__ = "inventory_reports"
    __table_args__ = (Index("ix_inventory_reports_asset_received", "asset_id", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(16))  # agent | ssh | cmdb
    kind: Mapped[str] = mapped_column(String(8))  # full | delta
    seq: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime]
    package_count: Mapped[int] = mapped_column(Integer)
    added: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16))  # static | dynamic
    query: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    asset_id: Mapped[int] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class SshTarget(Base):
    """An agentless asset: how to reach it and the host key trusted on first use."""

    __tablename__ = "ssh_targets"
    __table_args__ = (UniqueConstraint("host", "port", "username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=22)
    username: Mapped[str] = mapped_column(String(64))
    key_path: Mapped[str | None] = mapped_column(String(1024))
    host_key_type: Mapped[str] = mapped_column(String(64))
    host_key: Mapped[str] = mapped_column(Text)  # base64, as in known_hosts
    host_key_fingerprint: Mapped[str] = mapped_column(String(128))
    trusted_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_collected_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class AuditEvent(Base):
    """Append-only, hash-chained: each row's hash covers the previous row's hash."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


# --- vulnerability intelligence -----------------------------------------------------


class Vulnerability(Base):
    """A CVE (or another id when a flaw has no CVE) with what NVD says of it."""

    __tablename__ = "vulnerabilities"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    published: Mapped[datetime | None]
    modified: Mapped[datetime | None]
    status: Mapped[str | None] = mapped_column(String(32))  # NVD vulnStatus
    withdrawn_at: Mapped[datetime | None]
    cvss_version: Mapped[str | None] = mapped_column(String(8))
    cvss_vector: Mapped[str | None] = mapped_column(String(255))
    cvss_score: Mapped[float | None]
    severity: Mapped[str | None] = mapped_column(String(16))
    cvss_source: Mapped[str | None] = mapped_column(String(128))  # nvd, an advisory id …
    # Every metric NVD lists (primary and secondary, each CVSS version), each
    # scored by our calculator; the cvss_* columns above hold the one preferred.
    cvss_metrics: Mapped[list[Any]] = mapped_column(default=list)
    cwes: Mapped[list[Any]] = mapped_column(default=list)
    # Which feed said what: {"nvd": {"file": …, "imported_at": …}, "osv": …}
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Advisory(Base):
    __tablename__ = "advisories"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)
    published: Mapped[datetime | None]
    modified: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    aliases: Mapped[list[Any]] = mapped_column(default=list)
    severity: Mapped[list[Any]] = mapped_column(default=list)  # CVSS metrics given by the feed
    references: Mapped[list[Any]] = mapped_column(default=list)
    content_hash: Mapped[str] = mapped_column(String(64))
    source_file: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AdvisoryVulnerability(Base):
    __tablename__ = "advisory_vulnerabilities"

    advisory_id: Mapped[str] = mapped_column(
        ForeignKey("advisories.id", ondelete="CASCADE"), primary_key=True
    )
    vulnerability_id: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)


class AffectedPackageRow(Base):
    """One affected-package entry of an advisory, ranges as the feed gave them."""

    __tablename__ = "affected_packages"
    __table_args__ = (Index("ix_affected_packages_platform_name", "platform", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    advisory_id: Mapped[str] = mapped_column(
        ForeignKey("advisories.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    ranges: Mapped[list[Any]] = mapped_column(default=list)
    versions: Mapped[list[Any]] = mapped_column(default=list)
    all_versions: Mapped[bool] = mapped_column(Boolean, default=False)
    binaries: Mapped[list[Any]] = mapped_column(default=list)
    note: Mapped[str | None] = mapped_column(Text)


class KevEntryRow(Base):
    __tablename__ = "kev_entries"

    cve_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(255))
    product: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(Text)
    date_added: Mapped[date]
    due_date: Mapped[date | None]
    known_ransomware: Mapped[bool] = mapped_column(Boolean, default=False)
    required_action: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    # The dateReleased of the catalogue it was last stored or confirmed from
    # (None: undated, as every entry stored before 0010 is).
    catalogue_released: Mapped[datetime | None]
    source_file: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime]


class KevUnlisted(Base):
    """A CVE a complete KEV catalogue no longer lists: an older catalogue imported
    later does not list it again (one of the same time or later may)."""

    __tablename__ = "kev_unlisted"

    cve_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    catalogue_released: Mapped[datetime | None]  # of the catalogue that dropped it
    unlisted_at: Mapped[datetime]


class KevLatestCatalogue(Base):
    """The newest complete, dated KEV catalogue imported (one row). It speaks for
    every CVE, the ones it leaves out too: no catalogue released before it lists
    a CVE that is not in kev_latest_listed."""

    __tablename__ = "kev_latest_catalogue"

    released: Mapped[datetime] = mapped_column(primary_key=True)
    catalog_version: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int] = mapped_column(Integer)
    source_file: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime]


class KevLatestListed(Base):
    """A CVE the newest complete catalogue lists (its entry may have been rejected)."""

    __tablename__ = "kev_latest_listed"

    cve_id: Mapped[str] = mapped_column(String(128), primary_key=True)


class EpssScoreRow(Base):
    __tablename__ = "epss_scores"

    cve_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    epss: Mapped[float]
    percentile: Mapped[float]
    score_date: Mapped[date | None]
    model_version: Mapped[str | None] = mapped_column(String(64))
    source_file: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime]


class FeedImport(Base):
    """One run of `feeds import` / `feeds sync`: what it did, what it refused."""

    __tablename__ = "feed_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(128))
    path: Mapped[str] = mapped_column(Text)
    format: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)  # records refused whole
    # Parts refused of records stored without them (an affected entry, a metric).
    parts_rejected: Mapped[int] = mapped_column(Integer, default=0)
    # The first 1,000 of both kinds; a part's has "part": true.
    rejections: Mapped[list[Any]] = mapped_column(default=list)
    notes: Mapped[list[Any]] = mapped_column(default=list)


# The partial index's condition, as a query must spell it for SQLite to use the
# index: a literal (a bound parameter would not prove it).
UNOPENED = text("findings.status <> 'open'")


class Finding(Base):
    """(asset, package, vulnerability): open, fixed, excepted or false positive.

    The risk score and due date are stored (to sort and to find overdue
    findings); their explanation is recomputed from the inputs when shown.

    Identity is (asset, ecosystem, package name, arch, vulnerability): an
    upgrade that is still vulnerable keeps the finding (and its first-seen
    time); several installed versions of one name (kernels) share it.
    """

    __tablename__ = "findings"
    __table_args__ = (
        UniqueConstraint(
            "asset_id", "ecosystem", "package_name", "package_arch", "vulnerability_id"
        ),
        Index("ix_findings_vulnerability", "vulnerability_id"),
        # Only the findings that are not open: excepted, false positive and fixed ones
        # are listed and counted by status, while open ones, nearly all of a fleet's
        # first match, are not written into a second index sorted by risk (top risks
        # go by assets.finding_risk_bound).
        Index(
            "ix_findings_unopened_status",
            "status",
            "risk_score",
            sqlite_where=UNOPENED,
            postgresql_where=UNOPENED,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No index of their own: the unique constraint leads with asset_id, and the
    # name filters also match source_name, which no index could serve. Each
    # index costs microseconds on every one of a fleet's millions of findings.
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    ecosystem: Mapped[str] = mapped_column(String(16))
    package_name: Mapped[str] = mapped_column(String(255))
    package_arch: Mapped[str] = mapped_column(String(32), default="")
    installed_version: Mapped[str] = mapped_column(String(255))
    source_name: Mapped[str | None] = mapped_column(String(255))
    vulnerability_id: Mapped[str] = mapped_column(String(128))
    advisory_ids: Mapped[list[Any]] = mapped_column(default=list)
    fixed_version: Mapped[str | None] = mapped_column(String(255))  # None: no fix yet
    platform: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")
    first_seen_at: Mapped[datetime]
    fixed_at: Mapped[datetime | None]
    # Why a fixed finding went away (FIXED_REASONS): a new version or the package's
    # removal fixed it on the host, or its advisory stopped naming the version.
    fixed_reason: Mapped[str | None] = mapped_column(String(16))
    risk_score: Mapped[float] = mapped_column(default=0.0)
    due_at: Mapped[datetime | None]


class AssetDirtyName(Base):
    """A package name (or source name) an asset holds whose advisories changed:
    a feed import records them, and recomputation matches only the asset's
    packages of those names again."""

    __tablename__ = "asset_dirty_names"

    asset_id: Mapped[int] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(255), primary_key=True)


class FindingPackageName(Base):
    """The (ecosystem, package name, source name) of findings, once each: findings
    by package resolve a name to the package names that carry it here (a source
    names its binaries), then read each asset's findings of those names by the
    findings' identity index, instead of scanning every finding."""

    __tablename__ = "finding_package_names"

    ecosystem: Mapped[str] = mapped_column(String(16), primary_key=True)
    package_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    source_name: Mapped[str] = mapped_column(String(255), primary_key=True)  # "" when none


class PolicySetting(Base):
    """Configurable policy values (risk weights, SLA days per group) as JSON."""

    __tablename__ = "policy_settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128), default="system")


class FeedState(Base):
    """A counter bumped by every feed change: server processes rebuild their
    in-memory advisory index when it moves."""

    __tablename__ = "feed_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- patch policy ---------------------------------------------------------------------


class Repository(Base):
    """A package repository the server reads to know which updates exist: an apt
    suite, an rpm-md repository (dnf, yum, zypper) or an apk index.

    It offers its updates to every asset of its package family, narrowed by
    `platform` (e.g. "debian:12") and `group_id` when set. The last good
    metadata stays in repository_packages / repository_notices until a sync
    succeeds.
    """

    __tablename__ = "repositories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # apt | rpm | apk
    url: Mapped[str] = mapped_column(Text)
    suite: Mapped[str | None] = mapped_column(String(128))
    components: Mapped[list[Any]] = mapped_column(default=list)
    architectures: Mapped[list[Any]] = mapped_column(default=list)
    platform: Mapped[str | None] = mapped_column(String(64))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sync_interval_seconds: Mapped[int] = mapped_column(Integer, default=6 * 3600)
    # From the last good metadata.
    classification: Mapped[str] = mapped_column(String(16), default="unclassified")
    released_at: Mapped[datetime | None]
    checksum: Mapped[str] = mapped_column(String(80), default="")
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    package_count: Mapped[int] = mapped_column(Integer, default=0)
    notice_count: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RepositoryPackage(Base):
    __tablename__ = "repository_packages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(255))
    arch: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(255), default="")
    build_time: Mapped[datetime | None]


class RepositoryNotice(Base):
    """An update notice (rpm updateinfo erratum) a repository carries."""

    __tablename__ = "repository_notices"
    __table_args__ = (UniqueConstraint("repository_id", "notice_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    notice_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16), default="")
    issued_at: Mapped[datetime | None]
    title: Mapped[str] = mapped_column(Text, default="")
    cve_ids: Mapped[list[Any]] = mapped_column(default=list)
    packages: Mapped[list[Any]] = mapped_column(default=list)  # [name, version, arch]


class Patch(Base):
    """An update that exists: one package at one target version and arch. What
    assets it applies to is in asset_patches; approvals attach here, so one
    approval covers every asset the update goes to."""

    __tablename__ = "patches"
    __table_args__ = (UniqueConstraint("ecosystem", "package_name", "arch", "target_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ecosystem: Mapped[str] = mapped_column(String(16))  # deb | rpm | apk
    package_name: Mapped[str] = mapped_column(String(255), index=True)
    arch: Mapped[str] = mapped_column(String(32))
    target_version: Mapped[str] = mapped_column(String(255))
    classification: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16), default="")  # the notices' highest
    released_at: Mapped[datetime | None]
    notice_ids: Mapped[list[Any]] = mapped_column(default=list)
    cve_ids: Mapped[list[Any]] = mapped_column(default=list)
    repositories: Mapped[list[Any]] = mapped_column(default=list)
    reboot_required: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AssetPatch(Base):
    """A patch available to (or applied on) one asset, with what it would fix there."""

    __tablename__ = "asset_patches"
    __table_args__ = (UniqueConstraint("asset_id", "patch_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    patch_id: Mapped[int] = mapped_column(ForeignKey("patches.id", ondelete="CASCADE"), index=True)
    installed_version: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="available")  # | applied | superseded
    # Open findings on this asset the patch closes, and the risk it removes
    # (prioritize.risk.patch_risk: the highest of theirs plus a bounded share of the rest).
    closes: Mapped[list[Any]] = mapped_column(default=list)
    risk_score: Mapped[float] = mapped_column(default=0.0)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]


class Approval(Base):
    """The manual decision on a patch: pending (requested), approved or declined.
    Its history is in the audit log."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    patch_id: Mapped[int] = mapped_column(ForeignKey("patches.id", ondelete="CASCADE"), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str | None] = mapped_column(String(128))
    requested_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    comment: Mapped[str] = mapped_column(Text, default="")


class ApprovalRuleRow(Base):
    """An auto-approval rule of a group (patchwarden.policy.rules.ApprovalRule as JSON)."""

    __tablename__ = "approval_rules"
    __table_args__ = (UniqueConstraint("group_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleDecision(Base):
    """What a group's rules decided for a patch: approve, or wait until a time."""

    __tablename__ = "rule_decisions"
    __table_args__ = (UniqueConstraint("patch_id", "group_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patch_id: Mapped[int] = mapped_column(ForeignKey("patches.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("approval_rules.id", ondelete="SET NULL")
    )
    rule_name: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(16))  # approve | wait
    eligible_at: Mapped[datetime | None]
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class Baseline(Base):
    """A group's desired or minimum version of a package (optionally per OS release)."""

    __tablename__ = "baselines"
    __table_args__ = (UniqueConstraint("group_id", "package", "os_release"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    package: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(255))
    mode: Mapped[str] = mapped_column(String(16))  # desired | minimum
    os_release: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskAcceptanceRow(Base):
    """An exception: a risk accepted for a finding, a patch or an asset until it expires."""

    __tablename__ = "risk_acceptances"
    __table_args__ = (Index("ix_risk_acceptances_target", "scope", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # finding | patch | asset
    target_id: Mapped[int] = mapped_column(BigInteger)
    justification: Mapped[str] = mapped_column(Text)
    approved_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(128))
    # Set when the upkeep loop reopened its findings after expiry and reported it.
    expiry_reported_at: Mapped[datetime | None]


class Rollout(Base):
    """Approved patches moving ring by ring (patchwarden.rollouts.engine drives it)."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # draft | running | paused | halted | completed | aborted | rolling_back | rolled_back
    state: Mapped[str] = mapped_column(String(16), index=True)
    patch_ids: Mapped[list[Any]] = mapped_column(default=list)
    # Assets of the rings' groups that no job can reach: [{asset_id, hostname, reason}]
    skipped_assets: Mapped[list[Any]] = mapped_column(default=list)
    # What every job of the rollout carries: reboot policy, smoke tests, hooks, retries.
    job_options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    job_timeout_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    emergency_reason: Mapped[str] = mapped_column(Text, default="")
    emergency_approved_by: Mapped[str | None] = mapped_column(String(128))
    emergency_approved_at: Mapped[datetime | None]
    halt_reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RolloutRing(Base):
    """One ring of a rollout: its group, rate control, windows, soak and gate."""

    __tablename__ = "rollout_rings"
    __table_args__ = (UniqueConstraint("rollout_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    group_name: Mapped[str] = mapped_column(String(100))
    # pending | running | soaking | awaiting_signoff | passed | failed | rolling_back | rolled_back
    state: Mapped[str] = mapped_column(String(24), default="pending")
    max_concurrency: Mapped[str] = mapped_column(String(8), default="10%")  # "5" or "10%"
    max_errors: Mapped[str] = mapped_column(String(8), default="0")
    soak_seconds: Mapped[int] = mapped_column(Integer, default=0)
    min_success_percent: Mapped[float] = mapped_column(default=100.0)
    require_signoff: Mapped[bool] = mapped_column(Boolean, default=False)
    signed_off_by: Mapped[str | None] = mapped_column(String(128))
    signed_off_at: Mapped[datetime | None]
    # {"windows": [...], "blackouts": [...]} (rollouts.windows.parse_schedule)
    schedule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    order_groups: Mapped[list[Any]] = mapped_column(default=list)  # group names, first goes first
    site_limit: Mapped[int | None] = mapped_column(Integer)  # concurrent jobs per site (region)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]  # the last job finished
    passed_at: Mapped[datetime | None]
    halt_reason: Mapped[str] = mapped_column(Text, default="")


class RolloutJob(Base):
    """One asset's unit of work in a rollout: install the targets, or roll them back.

    State changes are guarded updates (`WHERE state IN (...)`), so the engine
    and an agent's result never overwrite each other's work."""

    __tablename__ = "rollout_jobs"
    __table_args__ = (
        UniqueConstraint("ring_id", "asset_id", "action"),
        Index("ix_rollout_jobs_asset_state", "asset_id", "state"),
        Index("ix_rollout_jobs_rollout_state", "rollout_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"))
    ring_id: Mapped[int] = mapped_column(ForeignKey("rollout_rings.id", ondelete="CASCADE"))
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))  # install | rollback
    # pending | dispatched | running | succeeded | failed | rolled_back | rollback_failed
    # | refused | timed_out | cancelled
    state: Mapped[str] = mapped_column(String(16), default="pending")
    targets: Mapped[list[Any]] = mapped_column(default=list)  # [{name, version, arch}]
    remove: Mapped[list[Any]] = mapped_column(default=list)  # names (rollback of added packages)
    package_manager: Mapped[str | None] = mapped_column(String(16))
    order_key: Mapped[int] = mapped_column(Integer, default=0)
    site: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    dispatched_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result_recorded_at: Mapped[datetime | None]
    smoke_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Next in line for its wave (rollouts.engine Step.soon): its agent polls sooner.
    hot: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str] = mapped_column(Text, default="")


class MaintenanceScheduleRow(Base):
    """The maintenance windows and blackouts of a group or of one asset
    (patchwarden.rollouts.windows.Schedule as JSON)."""

    __tablename__ = "maintenance_schedules"
    __table_args__ = (UniqueConstraint("scope", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # group | asset
    target_id: Mapped[int] = mapped_column(Integer)
    schedule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
