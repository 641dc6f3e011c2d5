"""Inventory collectors: one module per source of facts or packages.

Each module has `collect(host: Host) -> CollectorOutput`. `COLLECTORS` is the
registry, keyed by the name that appears in collector notes; its order is the
order they run in.
"""

from __future__ import annotations

from typing import Dict

from patchwarden.agent.collectors import (
    apk,
    dpkg,
    firmware,
    network,
    os_release,
    rpm,
    system,
    virtualization,
)
from patchwarden.agent.collectors.base import Collector, CollectorOutput

COLLECTORS: Dict[str, Collector] = {
    "os_release": os_release.collect,
    "system": system.collect,
    "network": network.collect,
    "virtualization": virtualization.collect,
    "firmware": firmware.collect,
    "dpkg": dpkg.collect,
    "rpm": rpm.collect,
    "apk": apk.collect,
}

__all__ = ["COLLECTORS", "Collector", "CollectorOutput"]
