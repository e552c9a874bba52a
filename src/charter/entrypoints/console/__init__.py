"""The web console: server-rendered pages over the same message bus as the API."""
