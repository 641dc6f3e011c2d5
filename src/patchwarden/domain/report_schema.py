"""Validation of inventory reports from outside (agents, SSH collection):
strict Pydantic models that turn untrusted JSON into domain values.
Protocol: see patchwarden.protocol.v1."""

from __future__ import annotations

from datetime import datetime
from ipaddress import ip_address
from typing import Annotated, Literal, NotRequired

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from patchwarden.domain.inventory import AgentReport, Facts, InstalledPackage
from patchwarden.errors import InvalidInput
from patchwarden.protocol import v1

Text64 = Annotated[str, StringConstraints(max_length=64)]
Text255 = Annotated[str, StringConstraints(max_length=255)]
PackageName = Annotated[str, StringConstraints(pattern=v1.NAME_RE.pattern)]
PackageVersion = Annotated[str, StringConstraints(pattern=v1.VERSION_RE.pattern)]
Arch = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{0,32}$")]
# Real hostnames break RFC 1123 now and then (underscores): accept them, but
# nothing that could be path or shell syntax.
Hostname = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


@with_config(ConfigDict(extra="forbid"))
class PackageIn(TypedDict):
    """One installed package as reported. A TypedDict rather than a model: a
    report carries thousands, and validating into plain dicts is twice as fast."""

    ecosystem: Literal["deb", "rpm", "apk", "pypi", "npm", "windows", "firmware"]
    name: PackageName
    version: PackageVersion
    arch: NotRequired[Arch]
    source_name: NotRequired[PackageName | None]
    source_version: NotRequired[PackageVersion | None]
    status: NotRequired[
        Literal[
            "installed",
            "half-installed",
            "unpacked",
            "half-configured",
            "triggers-awaited",
            "triggers-pending",
        ]
    ]


PackageList = TypeAdapter(list[PackageIn])


def to_package(entry: PackageIn) -> InstalledPackage:
    return InstalledPackage(
        entry["ecosystem"],
        entry["name"],
        entry["version"],
        entry.get("arch", ""),
        entry.get("source_name"),
        entry.get("source_version"),
        entry.get("status", "installed"),
    )


class OsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")  # os-release grows new keys over time

    id: Text64 | None = None
    version_id: Text64 | None = None
    name: Annotated[str, StringConstraints(max_length=128)] | None = None
    pretty_name: Text255 | None = None
    version_codename: Text64 | None = None
    id_like: Text255 | None = None
    release: Text64 | None = None  # the distribution's own file, e.g. Debian "12.5"


class FwupdDeviceIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Text255 | None = None
    version: Text255 | None = None
    vendor: Text255 | None = None


class FirmwareIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bios_vendor: Text255 | None = None
    bios_version: Text255 | None = None
    bios_date: Text64 | None = None
    system_vendor: Text255 | None = None
    system_product: Text255 | None = None
    system_serial: Text255 | None = None
    fwupd_devices: list[FwupdDeviceIn] = Field(default_factory=list, max_length=500)


class FactsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    hostname: Hostname | None = None
    fqdn: Text255 | None = None
    machine_id: Text64 | None = None
    os: OsIn | None = None
    kernel: Text255 | None = None
    arch: Annotated[str, StringConstraints(max_length=32)] | None = None
    boot_time: datetime | None = None
    reboot_required: bool | None = None
    ip_addresses: list[str] | None = Field(default=None, max_length=1024)
    virtualization: Text64 | None = None
    cloud_provider: Text64 | None = None
    firmware: FirmwareIn | None = None

    @field_validator("ip_addresses")
    @classmethod
    def _ips(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return [str(ip_address(item.split("/")[0])) for item in value]

    @field_validator("boot_time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("boot_time must carry a UTC offset")
        return value

    def domain(self) -> Facts:
        os = self.os or OsIn()
        return Facts(
            hostname=self.hostname,
            fqdn=self.fqdn,
            machine_id=self.machine_id,
            os_id=os.id,
            os_version_id=os.version_id,
            os_name=os.name,
            os_pretty_name=os.pretty_name,
            os_codename=os.version_codename,
            os_release=os.release,
            kernel=self.kernel,
            arch=self.arch,
            boot_time=self.boot_time,
            reboot_required=self.reboot_required,
            ip_addresses=None if self.ip_addresses is None else tuple(self.ip_addresses),
            virtualization=self.virtualization,
            cloud_provider=self.cloud_provider,
            firmware=None if self.firmware is None else self.firmware.model_dump(exclude_none=True),
        )


class CollectorNoteIn(Strict):
    collector: Text64
    status: Literal["ok", "skipped", "error"]
    message: Annotated[str, StringConstraints(max_length=2000)] = ""


class AgentReportIn(Strict):
    protocol: Literal[1]
    asset_id: int = Field(ge=1)
    seq: int = Field(ge=1, le=2**62)
    kind: Literal["full", "delta"]
    base_seq: int | None = Field(default=None, ge=0)
    agent_version: Text64 = ""
    collected_at: datetime
    facts: FactsIn = Field(default_factory=FactsIn)
    collector_notes: list[CollectorNoteIn] | None = Field(default=None, max_length=64)
    packages: list[PackageIn] = Field(default_factory=list, max_length=v1.MAX_PACKAGES)
    added: list[PackageIn] = Field(default_factory=list, max_length=v1.MAX_PACKAGES)
    removed: list[PackageIn] = Field(default_factory=list, max_length=v1.MAX_PACKAGES)

    @model_validator(mode="after")
    def _kind_fields(self) -> AgentReportIn:
        if self.kind == "full" and (self.added or self.removed):
            raise ValueError("a full report carries 'packages', not 'added'/'removed'")
        if self.kind == "delta":
            if self.packages:
                raise ValueError("a delta report carries 'added'/'removed', not 'packages'")
            if self.base_seq is None:
                raise ValueError("a delta report needs 'base_seq'")
        return self

    def domain(self) -> AgentReport:
        packages = [to_package(p) for p in self.packages]
        keys = {p.key for p in packages}
        if len(keys) != len(packages):
            raise InvalidInput("the same package (ecosystem, name, arch, version) is listed twice")
        return AgentReport(
            asset_id=self.asset_id,
            seq=self.seq,
            kind=self.kind,
            base_seq=self.base_seq,
            agent_version=self.agent_version,
            facts=self.facts.domain(),
            collector_notes=(
                None
                if self.collector_notes is None
                else [n.model_dump() for n in self.collector_notes]
            ),
            packages=packages,
            added=[to_package(p) for p in self.added],
            removed=[to_package(p) for p in self.removed],
        )
