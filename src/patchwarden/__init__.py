"""Patchwarden: self-hosted patch management."""

__version__ = "0.1.0"
