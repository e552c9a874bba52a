"""API routes, one module per service."""
