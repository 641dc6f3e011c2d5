"""Parse and score CVSS v2, v3.0, v3.1 and v4.0 vectors.

The arithmetic is the ``cvss`` library's (RedHatProductSecurity/cvss, checked
against FIRST's calculators by its authors and by our tests against its test
vectors); this module only detects the version, wraps its errors and turns its
objects into frozen values.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final, Protocol, cast

from cvss import CVSS2, CVSS3, CVSS4  # type: ignore[import-untyped]
from cvss.exceptions import CVSSError  # type: ignore[import-untyped]

from patchwarden.cvss.model import (
    CvssScore,
    CvssVector,
    CvssVersion,
    InvalidCvssVector,
    severity_for,
)

MAX_LENGTH: Final = 512

_PREFIXES: Final = {
    "CVSS:2.0/": CvssVersion.V2,
    "CVSS:3.0/": CvssVersion.V3_0,
    "CVSS:3.1/": CvssVersion.V3_1,
    "CVSS:4.0/": CvssVersion.V4,
}
_SYNTAX: Final = {
    CvssVersion.V2: "CVSS v2: AV:_/AC:_/Au:_/C:_/I:_/A:_[/temporal][/environmental]",
    CvssVersion.V3_0: "CVSS v3.0: CVSS:3.0/AV:_/AC:_/PR:_/UI:_/S:_/C:_/I:_/A:_[/...]",
    CvssVersion.V3_1: "CVSS v3.1: CVSS:3.1/AV:_/AC:_/PR:_/UI:_/S:_/C:_/I:_/A:_[/...]",
    CvssVersion.V4: (
        "CVSS v4.0: CVSS:4.0/AV:_/AC:_/AT:_/PR:_/UI:_/VC:_/VI:_/VA:_/SC:_/SI:_/SA:_[/...]"
    ),
}
# Metric names that only exist in later versions: a v2-looking vector with them
# most likely lost its "CVSS:x.y/" prefix.
_V3_ONLY: Final = frozenset({"PR", "UI", "S"})
_V4_ONLY: Final = frozenset({"AT", "VC", "VI", "VA", "SC", "SI", "SA"})


class _Calculator(Protocol):
    """What we use of the library's CVSS2/CVSS3/CVSS4 objects."""

    def scores(self) -> tuple[float | None, ...]: ...

    def clean_vector(self) -> str: ...


def _detect(vector: str) -> tuple[CvssVersion, str]:
    """The version and the text to hand to the library."""
    text = vector.strip()
    if text.startswith("(") and text.endswith(")"):  # NVD wrote v2 vectors this way
        text = text[1:-1]
    for prefix, version in _PREFIXES.items():
        if text.startswith(prefix):
            return version, text[len(prefix) :] if version is CvssVersion.V2 else text
    if text.startswith("CVSS:"):
        label = text[5:].split("/", 1)[0]
        raise InvalidCvssVector(
            vector, f"unsupported CVSS version {label!r} (supported: 2.0, 3.0, 3.1, 4.0)"
        )
    names = {field.split(":", 1)[0] for field in text.split("/")}
    if names & _V4_ONLY:
        raise InvalidCvssVector(vector, "looks like CVSS v4.0 but lacks the 'CVSS:4.0/' prefix")
    if names & _V3_ONLY:
        raise InvalidCvssVector(vector, "looks like CVSS v3 but lacks the 'CVSS:3.x/' prefix")
    return CvssVersion.V2, text


def _calculate(vector: str) -> tuple[CvssVersion, _Calculator]:
    if len(vector) > MAX_LENGTH:
        raise InvalidCvssVector(vector[:40] + "...", f"longer than {MAX_LENGTH} characters")
    version, text = _detect(vector)
    if not text:
        raise InvalidCvssVector(vector, "vector is empty")
    library = {CvssVersion.V2: CVSS2, CvssVersion.V4: CVSS4}.get(version, CVSS3)
    try:
        calculator = cast(_Calculator, library(text))
    except KeyError as exc:
        # The library lets a KeyError out for a few malformed vectors.
        reason = f"unknown metric or value {exc.args[0]!r}" if exc.args else "unknown metric"
        raise InvalidCvssVector(vector, f"{reason} ({_SYNTAX[version]})") from exc
    except (CVSSError, ValueError, ArithmeticError) as exc:
        reason = str(exc) or type(exc).__name__
        raise InvalidCvssVector(vector, f"{reason} ({_SYNTAX[version]})") from exc
    return version, calculator


def _metrics(version: CvssVersion, clean: str) -> MappingProxyType[str, str]:
    fields = clean.split("/") if version is CvssVersion.V2 else clean.split("/")[1:]
    return MappingProxyType(dict(field.split(":", 1) for field in fields))


def parse(vector: str) -> CvssVector:
    """Parse ``vector``; raises :class:`InvalidCvssVector`.

    Accepts ``CVSS:3.0/``, ``CVSS:3.1/`` and ``CVSS:4.0/`` vectors, and v2 vectors
    bare, in parentheses or with a ``CVSS:2.0/`` prefix.
    """
    version, calculator = _calculate(vector)
    clean = calculator.clean_vector()
    return CvssVector(version=version, vector=clean, metrics=_metrics(version, clean))


def score(vector: str) -> CvssScore:
    """Parse and score ``vector``; raises :class:`InvalidCvssVector`."""
    version, calculator = _calculate(vector)
    clean = calculator.clean_vector()
    scores = calculator.scores()
    base = scores[0]
    if base is None:  # the library always computes the base score
        raise InvalidCvssVector(vector, "no base score")
    temporal = scores[1] if len(scores) > 1 else None
    environmental = scores[2] if len(scores) > 2 else None
    return CvssScore(
        version=version,
        vector=clean,
        base_score=float(base),
        temporal_score=None if temporal is None else float(temporal),
        environmental_score=None if environmental is None else float(environmental),
        severity=severity_for(version, float(base)),
        metrics=_metrics(version, clean),
    )
