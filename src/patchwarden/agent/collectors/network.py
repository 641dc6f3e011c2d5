"""IP addresses of a live host, from `ip -j addr` (iproute2's JSON output),
or `ip -o addr` on iproute2 older than 4.13 (no -j), e.g. over SSH on old hosts."""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Iterable, List

from patchwarden.agent.collectors.base import CollectorOutput, failed, ok, skipped, try_run
from patchwarden.agent.host import Host


def _usable(candidates: Iterable[str]) -> List[str]:
    """Addresses without loopback and link-local ones (they say nothing about
    how to reach the host), deduplicated, in interface order."""
    addresses: List[str] = []
    for candidate in candidates:
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if address.is_loopback or address.is_link_local:
            continue
        if str(address) not in addresses:
            addresses.append(str(address))
    return addresses


def parse_ip_json(text: str) -> List[str]:
    """Addresses from `ip -j addr`."""
    interfaces: Any = json.loads(text)
    if not isinstance(interfaces, list):
        raise ValueError("ip -j addr: expected a JSON list")
    candidates: List[str] = []
    for interface in interfaces:
        if not isinstance(interface, dict):
            continue
        for info in interface.get("addr_info") or ():
            if isinstance(info, dict) and isinstance(info.get("local"), str):
                candidates.append(info["local"])
    return _usable(candidates)


def parse_ip_oneline(text: str) -> List[str]:
    """Addresses from `ip -o addr`: "2: eth0    inet 10.0.0.5/24 brd ... scope global eth0"."""
    candidates: List[str] = []
    for line in text.split("\n"):
        words = line.split()
        for family in ("inet", "inet6"):
            if family in words[:4]:
                position = words.index(family) + 1
                if position < len(words):
                    candidates.append(words[position].split("/")[0])
    return _usable(candidates)


def collect(host: Host) -> CollectorOutput:
    if not host.is_live:
        return skipped("not a live host: a sandbox root has no network interfaces")
    if not host.which("ip"):
        return skipped("`ip` (iproute2) is not installed")
    result = try_run(host, ["ip", "-j", "addr"])
    if result is not None and result.returncode == 0:
        try:
            return ok({"ip_addresses": parse_ip_json(result.stdout)})
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            return failed("cannot parse ip -j addr output: %s" % exc)
    # Old iproute2 rejects -j; its one-line format carries the same addresses.
    result = try_run(host, ["ip", "-o", "addr"])
    if result is None or result.returncode != 0:
        detail = result.stderr.strip() if result is not None else "did not run"
        return failed("ip addr failed: %s" % detail)
    return ok({"ip_addresses": parse_ip_oneline(result.stdout)}, message="used ip -o addr")
