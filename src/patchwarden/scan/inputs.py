"""The package lists ``patchwarden scan`` reads: dpkg's status file, ``rpm -qa``
output and pip requirements / ``pip freeze`` output.

Every parser returns ``(packages, skipped)``: the installed packages it found and a
:class:`SkippedLine` (line number, reason) for everything it could not use, so no
line is ever dropped silently. Input that is not text of the expected kind at all
(binary data, a file with no record of the expected shape) raises
:class:`~patchwarden.errors.InvalidInput`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final, NamedTuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from patchwarden.domain.inventory import InstalledPackage
from patchwarden.errors import InvalidInput
from patchwarden.versions import InvalidVersion, get_scheme


class SkippedLine(NamedTuple):
    """A line (or the first line of a record) that was not turned into a package."""

    line: int
    reason: str


# Skipped lines are SkippedLine values, typed as the plain (line, reason) pairs they are.
ParseResult = tuple[list[InstalledPackage], list[tuple[int, str]]]

# dpkg states in which a package's files are on disk (see dpkg-query(1)); the same
# set the agent's dpkg collector reports. not-installed and config-files are not.
DPKG_PRESENT_STATES: Final = frozenset(
    {
        "installed",
        "half-installed",
        "unpacked",
        "half-configured",
        "triggers-awaited",
        "triggers-pending",
    }
)
_DPKG_WANTS: Final = frozenset({"unknown", "install", "hold", "deinstall", "purge"})
_DPKG_FLAGS: Final = frozenset({"ok", "reinstreq"})
_DPKG_STATES: Final = DPKG_PRESENT_STATES | {"not-installed", "config-files"}
_SOURCE: Final = re.compile(r"(?P<name>[^\s()]+)(?:\s*\((?P<version>[^\s()]+)\))?")
_FIELD: Final = re.compile(r"(?P<name>[!-9;-~]+):(?P<value>.*)")  # deb822: printable, no ':'

# Architectures rpm builds for (rpmrc's arch lists), to tell "name-ver-rel.arch" from
# an arch-less "name-ver-rel" whose release contains dots.
RPM_ARCHES: Final = frozenset(
    {
        "noarch",
        "src",
        "nosrc",
        "i386",
        "i486",
        "i586",
        "i686",
        "athlon",
        "geode",
        "pentium3",
        "pentium4",
        "x86_64",
        "x86_64_v2",
        "x86_64_v3",
        "x86_64_v4",
        "amd64",
        "ia32e",
        "ia64",
        "aarch64",
        "armv5tel",
        "armv5tejl",
        "armv6l",
        "armv6hl",
        "armv7l",
        "armv7hl",
        "armv7hnl",
        "armv8l",
        "armv8hl",
        "armhfp",
        "ppc",
        "ppc64",
        "ppc64le",
        "ppc64p7",
        "ppc64iseries",
        "ppc64pseries",
        "s390",
        "s390x",
        "sparc",
        "sparcv9",
        "sparc64",
        "alpha",
        "alphaev6",
        "mips",
        "mipsel",
        "mips64",
        "mips64el",
        "riscv64",
        "loongarch64",
    }
)
RPM_NONE: Final = "(none)"  # how rpm prints an absent tag
RPM_QUERY_FORMAT: Final = r"%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n"

_PIP_COMMENT: Final = re.compile(r"(^|\s)#.*$")
_URL_OR_PATH: Final = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[a-z0-9+]+\+[a-z]+:|\.{0,2}/|~)", re.I)


def _require_text(text: str, what: str) -> None:
    if "\x00" in text:
        raise InvalidInput(f"the {what} contains NUL bytes: this is binary data, not a {what}")


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        yield number, line.rstrip("\r")


# -- dpkg -------------------------------------------------------------------------------


def _stanzas(text: str, skipped: list[tuple[int, str]]) -> Iterator[tuple[int, dict[str, str]]]:
    """(first line, fields by lower-case name) of each deb822 stanza."""
    start = 0
    fields: dict[str, str] = {}
    current: str | None = None
    for number, line in _lines(text):
        if not line.strip():
            if fields:
                yield start, fields
            start, fields, current = 0, {}, None
            continue
        if line[0] in " \t":
            if current is None:
                skipped.append(SkippedLine(number, "continuation line outside a field"))
            continue  # multi-line values (Description, Conffiles) are not needed
        match = _FIELD.fullmatch(line)
        if match is None:
            skipped.append(SkippedLine(number, "not a 'Field: value' line"))
            current = None
            continue
        if not fields:
            start = number
        current = match["name"].lower()
        fields[current] = match["value"].strip()
    if fields:
        yield start, fields


def parse_dpkg_status(text: str) -> ParseResult:
    """Packages present on disk according to a dpkg status file (/var/lib/dpkg/status).

    A package counts when its ``Status`` state is one in which its files are
    installed (``installed``, ``unpacked``, ``half-configured`` ...), as dpkg itself
    considers them; packages merely remembered (``config-files``, ``not-installed``)
    are not packages. ``Source: src`` or ``Source: src (version)`` gives the source
    package and its version (they differ from the binary's for binNMUs).
    """
    _require_text(text, "dpkg status file")
    deb = get_scheme("deb")
    skipped: list[tuple[int, str]] = []
    packages: list[InstalledPackage] = []
    seen: dict[tuple[str, str], int] = {}
    stanzas = list(_stanzas(text, skipped))
    if text.strip() and not any("package" in fields for _, fields in stanzas):
        raise InvalidInput("no 'Package:' field found: this is not a dpkg status file")
    if stanzas and text and not text.endswith("\n"):
        line, fields = stanzas.pop()
        skipped.append(
            SkippedLine(line, "the file ends mid-line: last record ignored (truncated file?)")
        )
    for line, fields in stanzas:
        name = fields.get("package")
        if not name:
            skipped.append(SkippedLine(line, "record without a Package field"))
            continue
        words = fields.get("status", "").split()
        if len(words) != 3 or not (
            words[0] in _DPKG_WANTS and words[1] in _DPKG_FLAGS and words[2] in _DPKG_STATES
        ):
            status = fields.get("status")
            reason = "no Status field" if status is None else f"unknown Status {status!r}"
            skipped.append(SkippedLine(line, f"{name}: {reason}"))
            continue
        if words[2] not in DPKG_PRESENT_STATES:
            continue  # not installed: nothing on disk to be vulnerable
        version = fields.get("version")
        arch = fields.get("architecture")
        if not version or not arch:
            missing = "Version" if not version else "Architecture"
            skipped.append(SkippedLine(line, f"{name}: installed but no {missing} (truncated?)"))
            continue
        source_name, source_version = name, version
        if source := fields.get("source"):
            match = _SOURCE.fullmatch(source)
            if match is None:
                skipped.append(SkippedLine(line, f"{name}: cannot read Source {source!r}"))
                continue
            source_name = match["name"]
            source_version = match["version"] or version
        try:
            deb.parse(version)
            deb.parse(source_version)
        except InvalidVersion as exc:
            skipped.append(SkippedLine(line, f"{name}: {exc}"))
            continue
        if (name, arch) in seen:
            first = seen[(name, arch)]
            skipped.append(SkippedLine(line, f"{name}:{arch} listed again (first on line {first})"))
            continue
        seen[(name, arch)] = line
        packages.append(
            InstalledPackage("deb", name, version, arch, source_name, source_version, words[2])
        )
    return packages, skipped


# -- rpm --------------------------------------------------------------------------------


def _source_rpm(source_rpm: str, epoch: str | None) -> tuple[str | None, str | None]:
    """("name", "[E:]version-release") from "name-version-release.src.rpm"."""
    stem = source_rpm
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    else:
        return None, None
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None, None
    # All sub-packages of one spec share its epoch, so the source has the binary's.
    prefix = f"{epoch}:" if epoch and epoch not in ("0", RPM_NONE) else ""
    return parts[0], f"{prefix}{parts[1]}-{parts[2]}"


def _evr(epoch: str | None, version: str, release: str) -> str:
    """rpm's EVR text, the epoch shown only when there is one (0 is none)."""
    if epoch and epoch not in ("0", RPM_NONE):
        return f"{epoch}:{version}-{release}"
    return f"{version}-{release}"


def _split_evr(evr: str) -> tuple[str | None, str, str] | None:
    epoch: str | None = None
    if ":" in evr:
        epoch, _, evr = evr.partition(":")
    version, dash, release = evr.rpartition("-")
    if not dash or not version or not release:
        return None
    return epoch, version, release


def _rpm_line(line: str) -> InstalledPackage | str:
    """The package on one line of ``rpm -qa`` output, or why there is none."""
    source_rpm = RPM_NONE
    if "\t" in line:
        fields = line.split("\t")
        if len(fields) == 4:  # the recommended --qf
            name, evr, arch, source_rpm = fields
            split = _split_evr(evr)
            if split is None:
                return f"cannot read EPOCH:VERSION-RELEASE {evr!r}"
            epoch, version, release = split
        elif len(fields) == 6:  # the agent's --qf: NAME EPOCH VERSION RELEASE ARCH SOURCERPM
            name, epoch, version, release, arch, source_rpm = fields
        else:
            return f"{len(fields)} tab-separated fields; expected 4 (see parse_rpm_qa)"
    else:
        rest, dot, arch = line.rpartition(".")
        if not dot or arch not in RPM_ARCHES:
            rest, arch = line, ""  # rpm < 4.? printed name-version-release only
        nv, _, release = rest.rpartition("-")
        name, _, version = nv.rpartition("-")
        if not name or not version or not release:
            return "not NAME-VERSION-RELEASE.ARCH"
        epoch = None
        if ":" in version:  # %{NEVRA}: name-epoch:version-release.arch
            epoch, _, version = version.partition(":")
    if name.startswith("gpg-pubkey"):
        return "gpg-pubkey: an imported signing key, not software"
    evr = _evr(epoch, version, release)
    try:
        get_scheme("rpm").parse(evr)
    except InvalidVersion as exc:
        return f"{name}: {exc}"
    source_name, source_version = (None, None)
    if source_rpm != RPM_NONE:
        source_name, source_version = _source_rpm(source_rpm, epoch)
        if source_name is None:
            return f"{name}: cannot read the source rpm {source_rpm!r}"
    arch = "" if arch == RPM_NONE else arch
    return InstalledPackage("rpm", name, evr, arch, source_name, source_version)


def parse_rpm_qa(text: str) -> ParseResult:
    """Packages from ``rpm -qa`` output.

    Best, because it names each package's source rpm (advisories name source
    packages) and its epoch::

        rpm -qa --qf '%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n'

    (``RPM_QUERY_FORMAT``). Also accepted: plain ``rpm -qa`` lines,
    ``NAME-[EPOCH:]VERSION-RELEASE[.ARCH]`` (``openssl-libs-3.0.7-27.el9.x86_64``):
    the arch is the part after the last ``.`` when it is a known rpm arch, the
    release the part after the last ``-``, the version the part after the ``-``
    before it. Those lines carry no source rpm, so binaries are looked up by their
    own name, and no epoch unless shown. ``gpg-pubkey`` entries (signing keys) are
    skipped. An epoch of 0 is written as none (rpm orders them alike).
    """
    _require_text(text, "rpm -qa output")
    packages: list[InstalledPackage] = []
    skipped: list[tuple[int, str]] = []
    for number, line in _lines(text):
        if not line.strip():
            continue
        found = _rpm_line(line.strip())
        if isinstance(found, str):
            skipped.append(SkippedLine(number, found))
        else:
            packages.append(found)
    if skipped and not packages and not any(r.startswith("gpg-pubkey") for _, r in skipped):
        raise InvalidInput(
            f"no package found on any line (line {skipped[0][0]}: "
            f"{skipped[0][1]}): this is not rpm -qa output"
        )
    return packages, skipped


# -- pip ----------------------------------------------------------------------------------


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """pip's view of a requirements file: backslash continuations joined."""
    pending: list[str] = []
    first = 0
    for number, line in _lines(text):
        if not pending:
            first = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        yield first, " ".join(pending)
        pending = []
    if pending:
        yield first, " ".join(pending)


def _option_reason(line: str) -> str:
    option = line.split(None, 1)[0].split("=", 1)[0]
    if option in ("-r", "--requirement"):
        return "includes another requirements file: scan that file too"
    if option in ("-c", "--constraint"):
        return "constraints file: constraints install nothing"
    if option in ("-e", "--editable"):
        return "editable install (a source tree): no released version to check"
    return f"pip option {option}: not a package"


def parse_requirements(text: str) -> ParseResult:
    """Pinned packages (``name==version``) from a requirements file or ``pip freeze``.

    Only exact pins describe what is installed, so everything else is skipped with
    its reason: other specifiers (``>=``, ``~=``, ``==1.*``), unpinned names,
    ``-r``/``-c``/``-e`` and other options, URLs and paths. A pin with an
    environment marker (``colorama==0.4.6 ; sys_platform == "win32"``) is
    scanned: whether the marker holds where the file is installed cannot be told
    here, and skipping it could hide a vulnerable package; pins of one name under
    different markers are all scanned. Comments and blank lines are ignored;
    names are PEP 503-normalised. Per-requirement options after the pin
    (``--hash=...``, as pip-compile writes them) are allowed.
    """
    _require_text(text, "requirements file")
    packages: list[InstalledPackage] = []
    skipped: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    seen_pins: set[tuple[str, str]] = set()
    for number, raw in _logical_lines(text):
        line = _PIP_COMMENT.sub("", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            skipped.append(SkippedLine(number, _option_reason(line)))
            continue
        if _URL_OR_PATH.match(line):
            skipped.append(SkippedLine(number, "URL or path: no released version to check"))
            continue
        requirement_text = re.split(r"\s+--?[a-z]", line, maxsplit=1, flags=re.I)[0]
        try:
            requirement = Requirement(requirement_text)
        except InvalidRequirement as exc:
            first = str(exc).splitlines()[0]
            skipped.append(SkippedLine(number, f"not a requirement: {first}"))
            continue
        name = canonicalize_name(requirement.name)
        if requirement.url:
            skipped.append(SkippedLine(number, f"{name}: direct URL reference, no version"))
            continue
        specifiers = list(requirement.specifier)
        pins = {s.version for s in specifiers if s.operator in ("==", "===")}
        if (
            not specifiers
            or len(pins) != 1
            or any(s.operator not in ("==", "===") or s.version.endswith(".*") for s in specifiers)
        ):
            shown = str(requirement.specifier) or "no version"
            skipped.append(
                SkippedLine(number, f"{name}: not pinned to one version ({shown}); pin with ==")
            )
            continue
        pin = pins.pop()
        first_line = seen.get(name)
        if first_line is not None and (requirement.marker is None or (name, pin) in seen_pins):
            skipped.append(
                SkippedLine(number, f"{name}: listed again (first on line {first_line})")
            )
            continue
        seen.setdefault(name, number)
        seen_pins.add((name, pin))
        packages.append(InstalledPackage("pypi", name, pin))
    return packages, skipped
