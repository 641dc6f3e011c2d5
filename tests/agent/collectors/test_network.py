from __future__ import annotations

import ipaddress
import shutil
import subprocess

import pytest

from patchwarden.agent.collectors import network
from patchwarden.agent.host import LocalHost
from tests.agent.fakes import FakeHost, result

# Captured from `ip -j addr` on a host with a bridge and IPv6 (trimmed).
IP_JSON = """[
 {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"addr_info":[
   {"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo"},
   {"family":"inet6","local":"::1","prefixlen":128,"scope":"host"}]},
 {"ifindex":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"addr_info":[
   {"family":"inet","local":"10.0.3.15","prefixlen":24,"broadcast":"10.0.3.255","scope":"global"},
   {"family":"inet","local":"169.254.10.1","prefixlen":16,"scope":"link"},
   {"family":"inet6","local":"2001:db8::15","prefixlen":64,"scope":"global"},
   {"family":"inet6","local":"fe80::5054:ff:fe12:3456","prefixlen":64,"scope":"link"}]},
 {"ifindex":3,"ifname":"docker0","flags":["NO-CARRIER"],"addr_info":[
   {"family":"inet","local":"172.17.0.1","prefixlen":16,"scope":"global"},
   {"family":"inet","local":"10.0.3.15","prefixlen":32,"scope":"global"}]},
 {"ifindex":4,"ifname":"tun0","flags":["POINTOPOINT"],"addr_info":[]}
]"""


def test_parse_ip_json() -> None:
    assert network.parse_ip_json(IP_JSON) == ["10.0.3.15", "2001:db8::15", "172.17.0.1"]


def test_collect_on_fake_live_host() -> None:
    host = FakeHost(commands={("ip", "-j", "addr"): result(IP_JSON)})
    output = network.collect(host)
    assert output.status == "ok"
    assert output.facts == {"ip_addresses": ["10.0.3.15", "2001:db8::15", "172.17.0.1"]}


def test_skipped_when_not_live_or_ip_missing() -> None:
    not_live = network.collect(FakeHost(live=False, programs=["ip"]))
    assert not_live.status == "skipped"
    assert "not a live host" in not_live.message
    no_ip = network.collect(FakeHost())
    assert (no_ip.status, no_ip.message) == ("skipped", "`ip` (iproute2) is not installed")


def test_garbage_output_is_an_error() -> None:
    output = network.collect(FakeHost(commands={("ip", "-j", "addr"): result("not json")}))
    assert output.status == "error"
    assert "cannot parse" in output.message


@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 (ip) is not installed")
def test_live_host_agrees_with_ip_brief_output() -> None:
    # `ip -br addr` is iproute2's independent text rendering of the same data.
    brief = subprocess.run(["ip", "-br", "addr"], check=True, capture_output=True, text=True).stdout
    expected: list[str] = []
    for line in brief.splitlines():
        for cidr in line.split()[2:]:
            address = ipaddress.ip_interface(cidr).ip
            if not (address.is_loopback or address.is_link_local) and str(address) not in expected:
                expected.append(str(address))
    output = network.collect(LocalHost("/"))
    assert output.status == "ok"
    assert output.facts["ip_addresses"] == expected


# The same host as IP_JSON, as iproute2 3.10 (CentOS 7) prints `ip -o addr`.
IP_ONELINE = """\
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever
2: eth0    inet 10.0.3.15/24 brd 10.0.3.255 scope global eth0\\       valid_lft forever
2: eth0    inet 169.254.10.1/16 scope link eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet6 2001:db8::15/64 scope global \\       valid_lft forever preferred_lft forever
2: eth0    inet6 fe80::5054:ff:fe12:3456/64 scope link \\       valid_lft forever
3: docker0    inet 172.17.0.1/16 scope global docker0\\       valid_lft forever
3: docker0    inet 10.0.3.15/32 scope global docker0\\       valid_lft forever
"""


def test_old_iproute_without_json() -> None:
    host = FakeHost(
        commands={
            ("ip", "-j", "addr"): result(
                "", returncode=255, stderr='Option "-j" is unknown, try "ip -help".\n'
            ),
            ("ip", "-o", "addr"): result(IP_ONELINE),
        }
    )
    output = network.collect(host)
    assert output.status == "ok"
    assert output.facts == {"ip_addresses": ["10.0.3.15", "2001:db8::15", "172.17.0.1"]}
    assert output.message == "used ip -o addr"


@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 (ip) is not installed")
def test_live_json_and_oneline_formats_agree() -> None:
    def ip(*argv: str) -> str:
        return subprocess.run(["ip", *argv], check=True, capture_output=True, text=True).stdout

    assert network.parse_ip_json(ip("-j", "addr")) == network.parse_ip_oneline(ip("-o", "addr"))
