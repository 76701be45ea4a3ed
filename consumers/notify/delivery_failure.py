"""How a channel says a notification did not go: for now, or for good."""

from __future__ import annotations


class DeliveryFailed(Exception):
    """The channel did not take the notification; ``permanent`` if trying again cannot help."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
