"""The ``charter`` command line: a thin client of the SDK, plus the local init/server/demo commands."""
