"""Virtualization technology (systemd-detect-virt) and cloud provider (from
the DMI strings clouds put in their virtual firmware)."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from patchwarden.agent.collectors._dmi import read_dmi
from patchwarden.agent.collectors.base import CollectorOutput, first_line, ok, skipped, try_run
from patchwarden.agent.host import Host

# Azure's fixed chassis asset tag tells it apart from a local Hyper-V guest.
AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"

# (DMI field, lower-case substring, provider); first match wins.
CLOUD_SIGNATURES: Tuple[Tuple[str, str, str], ...] = (
    ("sys_vendor", "amazon ec2", "aws"),
    ("bios_vendor", "amazon ec2", "aws"),
    ("bios_version", "amazon", "aws"),  # older Xen-based EC2 instances
    ("sys_vendor", "google", "gcp"),
    ("product_name", "google compute engine", "gcp"),
    ("chassis_asset_tag", AZURE_ASSET_TAG, "azure"),
    ("sys_vendor", "digitalocean", "digitalocean"),
    ("sys_vendor", "hetzner", "hetzner"),
    ("sys_vendor", "alibaba cloud", "alibaba"),
    ("chassis_asset_tag", "oraclecloud.com", "oracle"),
    ("sys_vendor", "scaleway", "scaleway"),
    ("sys_vendor", "linode", "linode"),
    ("sys_vendor", "vultr", "vultr"),
    ("product_name", "openstack", "openstack"),
    ("sys_vendor", "openstack", "openstack"),
)


def cloud_provider(dmi: Dict[str, str]) -> Optional[str]:
    """The cloud a machine runs in, judged from its DMI strings, or None."""
    lowered = {k: v.lower() for k, v in dmi.items()}
    for field, needle, provider in CLOUD_SIGNATURES:
        if needle.lower() in lowered.get(field, ""):
            return provider
    # Without the asset tag (unreadable), Hyper-V's own identity is the best hint.
    if lowered.get("sys_vendor") == "microsoft corporation" and (
        lowered.get("product_name") == "virtual machine"
    ):
        return "azure"
    return None


def detect_virt(host: Host) -> Tuple[Optional[str], str]:
    """(technology or "none", note) from systemd-detect-virt, with container
    marker files as a fallback when it is not installed."""
    if host.which("systemd-detect-virt"):
        result = try_run(host, ["systemd-detect-virt"])
        if result is not None:
            answer = first_line(result.stdout)
            # Exit 1 with "none" is its documented way of saying "bare metal".
            if answer and (result.returncode == 0 or answer == "none"):
                return answer, ""
        return None, "systemd-detect-virt gave no answer"
    if host.read_text("/.dockerenv") is not None:
        return "docker", "systemd-detect-virt absent; found /.dockerenv"
    if host.read_text("/run/.containerenv") is not None:
        return "podman", "systemd-detect-virt absent; found /run/.containerenv"
    return None, "systemd-detect-virt is not installed"


def collect(host: Host) -> CollectorOutput:
    if not host.is_live:
        return skipped("not a live host: virtualization is a property of the running machine")
    virtualization, note = detect_virt(host)
    provider = cloud_provider(read_dmi(host))
    if virtualization is None and provider is None:
        return skipped(note)
    notes: List[str] = [note] if note else []
    return ok(
        {"virtualization": virtualization, "cloud_provider": provider},
        message="; ".join(notes),
    )
