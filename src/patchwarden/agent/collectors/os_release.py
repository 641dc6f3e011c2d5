"""Operating system identity from os-release(5), plus the distribution's own
release file (Debian point release, RHEL release string, Alpine version)."""

from __future__ import annotations

import re
from typing import Dict, Optional

from patchwarden.agent.collectors.base import CollectorOutput, first_line, ok, skipped
from patchwarden.agent.host import Host

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")

# os-release key -> facts["os"] key
FIELDS = {
    "ID": "id",
    "VERSION_ID": "version_id",
    "NAME": "name",
    "PRETTY_NAME": "pretty_name",
    "VERSION_CODENAME": "version_codename",
    "ID_LIKE": "id_like",
}

# Files whose first line is the precise distribution release ("12.5", "3.19.1",
# "Red Hat Enterprise Linux release 9.3 (Plow)"). Most specific first.
RELEASE_FILES = (
    "/etc/debian_version",
    "/etc/alpine-release",
    "/etc/redhat-release",
    "/etc/rocky-release",
    "/etc/almalinux-release",
    "/etc/centos-release",
    "/etc/fedora-release",
    "/etc/SuSE-release",
)

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Inside double quotes the shell only gives backslash a meaning before these.
_DQUOTE_ESCAPABLE = '"\\$`'


def _unquote(value: str) -> Optional[str]:
    """Evaluate one os-release value with shell quoting rules (no expansion).

    Returns None for values the spec forbids and a shell would reject
    (unterminated quotes, a trailing lone backslash).
    """
    out = []
    i = 0
    quote = ""
    while i < len(value):
        char = value[i]
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                out.append(char)
        elif quote == '"':
            if char == '"':
                quote = ""
            elif char == "\\" and i + 1 < len(value) and value[i + 1] in _DQUOTE_ESCAPABLE:
                i += 1
                out.append(value[i])
            else:
                out.append(char)
        elif char in "'\"":
            quote = char
        elif char == "\\":
            if i + 1 >= len(value):
                return None
            i += 1
            out.append(value[i])
        elif char in " \t":
            break  # an unquoted blank ends the word (anything after is a comment or junk)
        else:
            out.append(char)
        i += 1
    if quote:
        return None
    return "".join(out)


def parse_os_release(text: str) -> Dict[str, str]:
    """Parse os-release text into {KEY: value}; malformed lines are ignored."""
    values: Dict[str, str] = {}
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not _KEY_RE.match(key):
            continue
        parsed = _unquote(value)
        if parsed is not None:
            values[key] = parsed
    return values


def collect(host: Host) -> CollectorOutput:
    text = None
    source = ""
    for path in OS_RELEASE_PATHS:
        text = host.read_text(path)
        if text is not None:
            source = path
            break
    release = None
    for path in RELEASE_FILES:
        release = first_line(host.read_text(path))
        # Ubuntu and Debian testing say "trixie/sid" there: a codename, not a release.
        if release and "/" not in release:
            break
        release = None
    if text is None and release is None:
        return skipped("no /etc/os-release, /usr/lib/os-release or distribution release file")

    values = parse_os_release(text or "")
    os_facts: Dict[str, Optional[str]] = {}
    for key, fact in FIELDS.items():
        if values.get(key):
            os_facts[fact] = values[key]
    if release:
        os_facts["release"] = release
    message = "" if text is not None else "no os-release file; only the distribution release"
    if source == "/usr/lib/os-release":
        message = "read /usr/lib/os-release (no /etc/os-release)"
    return ok({"os": os_facts}, message=message)
