"""Access tokens at rest: sealed with the deployment key, never stored in plain text.

Hawk needs the token itself to check a request's MAC, so it is encrypted
(Fernet: AES-128-CBC with HMAC-SHA256) rather than hashed. Several keys may
be given, newest first, so a deployment can rotate its key: everything is
sealed with the first and opened with whichever matches.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenCipher:
    def __init__(self, keys: str):
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ValueError("CAIRN_SECRET_KEY is empty: set it, or let Cairn generate one")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except ValueError:
            raise ValueError(
                "CAIRN_SECRET_KEY must be one or more comma-separated Fernet keys "
                "(32 url-safe base64-encoded bytes each)"
            ) from None

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ValueError("an access token was sealed with a key this deployment lacks") from None
