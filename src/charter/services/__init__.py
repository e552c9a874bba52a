"""Use cases: the message bus, its handlers, and the ports the adapters implement."""
