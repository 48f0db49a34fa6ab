"""100ms (100ms.live): REST client, local token minting and the `StreamingProvider` over them."""

from livestage.providers.hms.client import HmsClient
from livestage.providers.hms.provider import HmsProvider

__all__ = ["HmsClient", "HmsProvider"]
