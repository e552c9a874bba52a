"""Entrypoints: the REST API, the CLI and (later) the console and workers."""
