"""The business attributes people set on an asset, and their rules.

Used by the API (PATCH /assets/{id}), the CLI (`assets set`) and the CMDB
import, so every way in applies the same validation.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

DataSensitivity = Literal["public", "internal", "confidential", "restricted"]
DeviceType = Literal[
    "server", "workstation", "vm", "cloud_instance", "container_host", "network_device", "other"
]
DATA_SENSITIVITIES: tuple[str, ...] = ("public", "internal", "confidential", "restricted")
DEVICE_TYPES: tuple[str, ...] = (
    "server",
    "workstation",
    "vm",
    "cloud_instance",
    "container_host",
    "network_device",
    "other",
)

TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_.:/=-]{0,62}$")
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
ShortLabel = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


def validate_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'Europe/Berlin', 'UTC')") from exc
    if value not in available_timezones() and value != "UTC":
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'Europe/Berlin', 'UTC')")
    return value


def normalise_tag(tag: str) -> str:
    value = tag.strip().lower()
    if not TAG_RE.match(value):
        raise ValueError(
            f"tag {tag!r} must be 1-63 characters of a-z, 0-9 and _ . : / = -, "
            "starting with a letter or digit"
        )
    return value


class AssetAttributes(BaseModel):
    """A partial update: only the fields given are changed; null clears a text field."""

    model_config = ConfigDict(extra="forbid")

    criticality: int | None = Field(default=None, ge=1, le=4, description="1 highest .. 4 lowest")
    environment: ShortLabel | None = None
    owner: Label | None = None
    business_service: Label | None = None
    region: ShortLabel | None = None
    timezone: str | None = None
    tags: list[str] | None = Field(default=None, max_length=64)
    internet_facing: bool | None = None
    data_sensitivity: DataSensitivity | None = None
    device_type: DeviceType | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return None if value is None else validate_timezone(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return sorted({normalise_tag(tag) for tag in value})

    def changes(self) -> dict[str, object]:
        """The fields that were explicitly given (None included, meaning 'clear')."""
        return self.model_dump(exclude_unset=True)


# Fields that may not be cleared because the asset table requires a value.
REQUIRED_ATTRIBUTES = frozenset(
    {"criticality", "internet_facing", "data_sensitivity", "device_type", "tags"}
)
