"""The versioned agent <-> server protocol, shared by both sides.

Standard library only and Python 3.9 compatible: the agent imports it.
"""
