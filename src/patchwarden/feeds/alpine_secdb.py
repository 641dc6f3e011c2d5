"""Alpine's secdb (https://secdb.alpinelinux.org/vX.Y/main.json)::

    {"distroversion": "v3.11", "reponame": "main", "archs": [...], "urlprefix": …,
     "packages": [{"pkg": {"name": "openssl",
                           "secfixes": {"1.1.1g-r0": ["CVE-2020-1967"], …}}}]}

Each (package, fixed version) becomes one :class:`Advisory` with the stable
id ``ALPINE-<branch>-<package>-<version>`` (``ALPINE-3.11-openssl-1.1.1g-r0``),
source "alpine-secdb", platform ``alpine:<branch>``, one range (introduced
"0", fixed <version>) and the ids it fixes as aliases.

The ids are free text upstream. Words in parentheses are comments; spellings
such as ``CVE_2019-2426``, ``CVE 2018-16859``, ``CVE-2019-19451.patch`` and
``CVE-2017-17434-1`` are normalised to ``CVE-YYYY-NNNN`` (each listed in a
note); other ids (``XSA-182``, ``TALOS-2019-0844``, ``wnpa-sec-2017-18``) are
kept as written; placeholders (``CVE-????-?????``) and plain words are dropped
(counted in a note). The key ``"0"`` means "never affected": no advisory (its
ids are counted in a note). A version that apk cannot order is rejected; one
that merely breaks apk's syntax rules (``4.8.0.-r1``) is kept, because apk
orders it, and counted in a note.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Final

from patchwarden.domain.advisories import (
    Advisory,
    AffectedPackage,
    AffectedRange,
    ParsedFeed,
    RangeEvent,
)
from patchwarden.feeds.base import (
    MAX_ID_LENGTH,
    Collector,
    FeedSource,
    FileRejected,
    version_error,
)
from patchwarden.versions import InvalidVersion, get_scheme

NAME: Final = "alpine-secdb"
_BRANCH: Final = re.compile(r"v?(\d+\.\d+)")
_COMMENT: Final = re.compile(r"\([^)]*\)")
_ANY_CVE: Final = re.compile(r"CVE[\s_-]+(\d{4})-(\d{4,})\S*")
_OTHER_ID: Final = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*-\d+")


def ids_of(entry: str, normalised: Counter[tuple[str, str]], dropped: Counter[str]) -> list[str]:
    """The ids one secfixes string names (see the module docstring)."""
    text = _COMMENT.sub(" ", entry)
    ids: list[str] = []
    for match in _ANY_CVE.finditer(text):
        cve = f"CVE-{match[1]}-{match[2]}"
        ids.append(cve)
        if match[0] != cve:
            normalised[(match[0], cve)] += 1
    for token in _ANY_CVE.sub(" ", text).split():
        if token.startswith("CVE-?"):
            dropped["placeholder"] += 1
        elif _OTHER_ID.fullmatch(token):
            ids.append(token)
        else:
            dropped["word"] += 1
    return ids


class AlpineSecdbFeed:
    name: Final = NAME

    def detect(self, head: bytes, filename: str) -> bool:
        return b'"distroversion"' in head and (b'"packages"' in head or b'"secfixes"' in head)

    def parse(self, source: FeedSource) -> ParsedFeed:
        c = Collector(NAME, source)
        with c.whole_file(), c.json_document() as reader:
            document = reader.load()
            _Parser(c).run(document)
        return c.result()


class _Parser:
    def __init__(self, collector: Collector) -> None:
        self.c = collector
        self.normalised: Counter[tuple[str, str]] = Counter()
        self.dropped: Counter[str] = Counter()
        self.never = 0
        self.loose: list[str] = []
        self.ids: set[str] = set()

    def run(self, document: object) -> None:
        c = self.c
        if not isinstance(document, dict) or "distroversion" not in document:
            raise FileRejected("not an Alpine secdb file: no 'distroversion'")
        branch = _BRANCH.fullmatch(str(document["distroversion"]))
        if branch is None:
            raise FileRejected(
                f"distroversion {document['distroversion']!r} is not a numbered branch (vX.Y)"
            )
        packages = document.get("packages")
        if not isinstance(packages, list):
            raise FileRejected("not an Alpine secdb file: no 'packages' list")
        platform = f"alpine:{branch[1]}"
        for index, item in enumerate(packages):
            pkg = item.get("pkg") if isinstance(item, dict) else None
            name = pkg.get("name") if isinstance(pkg, dict) else None
            if not isinstance(pkg, dict) or not isinstance(name, str) or not name.strip():
                c.reject(c.at(f"packages[{index}]"), "expected {'pkg': {'name', 'secfixes'}}")
                continue
            secfixes = pkg.get("secfixes") or {}
            if not isinstance(secfixes, dict):
                c.reject(c.at(name), "'secfixes' must be an object")
                continue
            for version, entries in secfixes.items():
                self._fix(platform, name.strip(), str(version).strip(), entries)
        self._notes(document, platform, len(packages))

    def _fix(self, platform: str, name: str, version: str, entries: object) -> None:
        c = self.c
        where = c.at(name, version)
        if entries is None:
            entries = []
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            c.reject(where, "the fixed ids must be a list of strings")
            return
        if version == "0":
            self.never += len(entries)
            return
        error = version_error("apk", version)
        if error:
            c.reject(where, f"{version!r} is not an apk version: {error}")
            return
        try:
            get_scheme("apk").validate(version)
        except InvalidVersion:
            self.loose.append(version)
        identifier = f"ALPINE-{platform.split(':')[1]}-{name}-{version}"
        if len(identifier) > MAX_ID_LENGTH:
            c.reject(where, f"advisory id longer than {MAX_ID_LENGTH} characters")
            return
        if identifier in self.ids:
            c.reject(where, f"{identifier} is listed again; the first is kept")
            return
        self.ids.add(identifier)
        aliases: list[str] = []
        for entry in entries:
            aliases.extend(ids_of(entry, self.normalised, self.dropped))
        fixed = AffectedRange(
            "ECOSYSTEM", (RangeEvent("introduced", "0"), RangeEvent("fixed", version))
        )
        c.add(
            Advisory(
                id=identifier,
                source=NAME,
                aliases=tuple(dict.fromkeys(aliases)),
                title=f"{name} {version}: security fixes",
                affected=(AffectedPackage(platform, name, ranges=(fixed,)),),
            )
        )

    def _notes(self, document: dict[str, object], platform: str, packages: int) -> None:
        c = self.c
        c.note(
            f"Alpine secdb {document.get('distroversion')}/{document.get('reponame')} "
            f"({platform}): {packages} packages"
        )
        if self.never:
            c.note(f"{self.never} ids under the key '0' (never affected): no advisory")
        if self.normalised:
            spellings = ", ".join(f"{o!r} -> {n}" for (o, n) in self.normalised)
            c.note(f"{sum(self.normalised.values())} malformed CVE ids normalised: {spellings}")
        if self.dropped["placeholder"]:
            c.note(f"{self.dropped['placeholder']} placeholder ids (CVE-????-?????) dropped")
        if self.dropped["word"]:
            c.note(f"{self.dropped['word']} words that are not ids dropped from id lists")
        if self.loose:
            sample = ", ".join(repr(v) for v in self.loose[:5])
            c.note(
                f"{len(self.loose)} fixed versions break apk's syntax rules but apk orders "
                f"them, so they are kept: {sample}"
            )


FEED: Final = AlpineSecdbFeed()
