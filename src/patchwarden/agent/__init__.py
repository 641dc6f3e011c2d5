"""The Patchwarden agent.

Standard library only, Python 3.9+: it runs on any managed host's system Python.
It imports nothing from the server side (only `patchwarden.protocol`).
"""

AGENT_VERSION = "0.1.0"
