"""Prioritisation (pure): the explainable risk score and the SLA due date of findings.

Nothing here touches the database, the network or the clock; callers pass
every value in, including "now".

>>> inputs = RiskInputs(9.8, None, 0.94, True, False, 1, True, "restricted")
>>> risk_score(inputs).score
100.0
"""

from patchwarden.prioritize.risk import (
    DEFAULT_WEIGHTS,
    RiskComponent,
    RiskInputs,
    RiskScore,
    RiskWeights,
    patch_risk,
    risk_score,
)
from patchwarden.prioritize.severity import (
    SEVERITY_LEVELS,
    SeverityLevel,
    normalise_severity,
    severity_from_cvss,
)
from patchwarden.prioritize.sla import (
    DEFAULT_SLA_POLICY,
    SlaDue,
    SlaPolicy,
    SlaStatus,
    due_date,
    sla_status,
)

__all__ = [
    "DEFAULT_SLA_POLICY",
    "DEFAULT_WEIGHTS",
    "SEVERITY_LEVELS",
    "RiskComponent",
    "RiskInputs",
    "RiskScore",
    "RiskWeights",
    "SeverityLevel",
    "SlaDue",
    "SlaPolicy",
    "SlaStatus",
    "due_date",
    "normalise_severity",
    "patch_risk",
    "risk_score",
    "severity_from_cvss",
    "sla_status",
]
