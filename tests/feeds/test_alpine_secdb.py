"""Alpine secdb: the 18 shared files, id normalisation, and bad entries."""

from __future__ import annotations

from collections import Counter

from patchwarden.domain.advisories import (
    Advisory,
    AffectedPackage,
    AffectedRange,
    ParsedFeed,
    RangeEvent,
)
from patchwarden.feeds.alpine_secdb import ids_of
from tests.feeds.conftest import Parse


def test_shared_files(shared_feeds: dict[str, list[ParsedFeed]]) -> None:
    feeds = shared_feeds["alpine-secdb"]
    assert len(feeds) == 18
    advisories = [r for f in feeds for r in f.records if isinstance(r, Advisory)]
    assert len(advisories) == 4264
    assert all(not f.rejected for f in feeds)
    packages = sum(int(f.notes[0].split(": ")[1].split()[0]) for f in feeds)
    assert packages == 1652
    assert len({a.id for a in advisories}) == 4264  # ids are unique across main and community
    platforms = Counter(a.affected[0].platform for a in advisories)
    assert sorted(platforms) == [f"alpine:3.{n}" for n in (10, 11, 3, 4, 5, 6, 7, 8, 9)]
    aliases = [x for a in advisories for x in a.aliases]
    assert not [x for x in aliases if x.startswith("CVE") and not x.startswith("CVE-")]
    # Distinct XSA ids per advisory, counted independently with re.findall: 736.
    assert sum(x.startswith("XSA-") for x in aliases) == 736
    notes = " | ".join(n for f in feeds for n in f.notes)
    assert "ids under the key '0' (never affected): no advisory" in notes
    assert "'CVE_2019-2426' -> CVE-2019-2426" in notes
    openssl = next(a for a in advisories if a.id == "ALPINE-3.11-openssl-1.1.1d-r1")
    assert openssl == Advisory(
        id="ALPINE-3.11-openssl-1.1.1d-r1",
        source="alpine-secdb",
        aliases=("CVE-2019-1547", "CVE-2019-1549", "CVE-2019-1563"),
        title="openssl 1.1.1d-r1: security fixes",
        affected=(
            AffectedPackage(
                "alpine:3.11",
                "openssl",
                ranges=(
                    AffectedRange(
                        "ECOSYSTEM",
                        (RangeEvent("introduced", "0"), RangeEvent("fixed", "1.1.1d-r1")),
                    ),
                ),
            ),
        ),
    )


def test_ids_of() -> None:
    normalised: Counter[tuple[str, str]] = Counter()
    dropped: Counter[str] = Counter()
    assert ids_of("CVE-2016-6258 XSA-182", normalised, dropped) == ["CVE-2016-6258", "XSA-182"]
    assert ids_of("CVE_2019-2426", normalised, dropped) == ["CVE-2019-2426"]
    assert ids_of("CVE 2018-16859", normalised, dropped) == ["CVE-2018-16859"]
    assert ids_of("CVE-2019-19451.patch", normalised, dropped) == ["CVE-2019-19451"]
    assert ids_of("CVE-2018-14468 (FrameRelay)", normalised, dropped) == ["CVE-2018-14468"]
    assert ids_of("CVE-????-?????  XSA-295", normalised, dropped) == ["XSA-295"]
    assert ids_of(
        "CVE-2017-5753 CVE-2017-5715 CVE-2017-5754 XSA-254 XPTI", normalised, dropped
    ) == ["CVE-2017-5753", "CVE-2017-5715", "CVE-2017-5754", "XSA-254"]
    assert ids_of("wnpa-sec-2017-18", normalised, dropped) == ["wnpa-sec-2017-18"]
    assert ids_of("CVE-2019-5060 TALOS-2019-0844", normalised, dropped) == [
        "CVE-2019-5060",
        "TALOS-2019-0844",
    ]
    assert dict(normalised) == {
        ("CVE_2019-2426", "CVE-2019-2426"): 1,
        ("CVE 2018-16859", "CVE-2018-16859"): 1,
        ("CVE-2019-19451.patch", "CVE-2019-19451"): 1,
    }
    assert dict(dropped) == {"placeholder": 1, "word": 1}


def test_bad_entries(parse_text: Parse) -> None:
    doc = {
        "distroversion": "v3.12",
        "reponame": "main",
        "packages": [
            {
                "pkg": {
                    "name": "good",
                    "secfixes": {"1.0-r1": ["CVE-2020-0001"], "0": ["CVE-2020-0002"]},
                }
            },
            {"pkg": {"name": "odd", "secfixes": {"1.0.-r1": None, " ": ["CVE-2020-0003"]}}},
            {"pkg": {"name": "types", "secfixes": {"1.0-r0": "CVE-2020-0004"}}},
            {"nope": 1},
        ],
    }
    parsed = parse_text("alpine-secdb", doc, name="main.json")
    assert [r.id for r in parsed.records if isinstance(r, Advisory)] == [
        "ALPINE-3.12-good-1.0-r1",
        "ALPINE-3.12-odd-1.0.-r1",
    ]
    assert [(r.where, r.reason.split(":")[0]) for r in parsed.rejected] == [
        ("main.json odd", "'' is not an apk version"),
        ("main.json types 1.0-r0", "the fixed ids must be a list of strings"),
        ("main.json packages[3]", "expected {'pkg'"),
    ]
    assert parsed.notes == (
        "Alpine secdb v3.12/main (alpine:3.12): 4 packages",
        "1 ids under the key '0' (never affected): no advisory",
        "1 fixed versions break apk's syntax rules but apk orders them, so they are kept: '1.0.-r1'",
    )


def test_not_secdb(parse_text: Parse) -> None:
    parsed = parse_text("alpine-secdb", {"distroversion": "edge", "packages": []}, name="x")
    assert parsed.rejected[0].reason == "distroversion 'edge' is not a numbered branch (vX.Y)"
