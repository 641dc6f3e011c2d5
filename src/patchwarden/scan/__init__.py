"""Inputs and outputs of the offline ``patchwarden scan`` (pure: text in, values or text out).

``inputs`` turns package lists (dpkg status, ``rpm -qa``, pip requirements) into
:class:`~patchwarden.domain.inventory.InstalledPackage` values, with every unusable
line reported; ``report`` turns scan results into JSON, SARIF or a table, and
decides the exit code.
"""

from patchwarden.scan.inputs import (
    RPM_QUERY_FORMAT,
    SkippedLine,
    parse_dpkg_status,
    parse_requirements,
    parse_rpm_qa,
)
from patchwarden.scan.report import (
    SEVERITIES,
    ScanRow,
    exit_code,
    severity_rank,
    to_json,
    to_sarif,
    to_table,
)

__all__ = [
    "RPM_QUERY_FORMAT",
    "SEVERITIES",
    "ScanRow",
    "SkippedLine",
    "exit_code",
    "parse_dpkg_status",
    "parse_requirements",
    "parse_rpm_qa",
    "severity_rank",
    "to_json",
    "to_sarif",
    "to_table",
]
