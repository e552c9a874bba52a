"""Adapters: the ports implemented on real engines (SQLAlchemy, Cedar, Ed25519 key files)."""
