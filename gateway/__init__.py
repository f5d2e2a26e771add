"""ian-gateway: a first-party ad-event gateway for Instacart's ad network."""

__version__ = "0.1.0"
