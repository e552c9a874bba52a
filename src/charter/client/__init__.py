"""The Python SDK: ``charter.Client`` over the REST API, raising the typed errors of charter.errors."""
