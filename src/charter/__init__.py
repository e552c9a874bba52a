"""Charter: self-hosted governance of the machine-learning lifecycle across isolated accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Client", "__version__"]

if TYPE_CHECKING:
    from charter.client.client import Client


def __getattr__(name: str) -> Any:
    # The SDK is imported lazily so that `import charter` stays cheap for the server and the CLI.
    if name == "Client":
        from charter.client.client import Client

        return Client
    raise AttributeError(name)
