"""CVSS v2, v3.0, v3.1 and v4.0: parse vectors, compute scores and severity bands.

>>> score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").base_score
9.8
"""

from patchwarden.cvss.model import (
    CvssScore,
    CvssVector,
    CvssVersion,
    InvalidCvssVector,
    Severity,
    severity_for,
)
from patchwarden.cvss.scoring import parse, score

__all__ = [
    "CvssScore",
    "CvssVector",
    "CvssVersion",
    "InvalidCvssVector",
    "Severity",
    "parse",
    "score",
    "severity_for",
]
