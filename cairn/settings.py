"""Cairn's operational surface: one typed settings object built from the environment.

Every field is read from ``CAIRN_<FIELD NAME IN CAPITALS>``; each default works
on a laptop. ``cairn serve --help`` lists them from here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PREFIX = "CAIRN_"


def _setting(default: Any, help: str, secret: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "secret": secret})


@dataclass(frozen=True)
class Settings:
    database_url: str = _setting(
        "sqlite:///.cairn/cairn.db",
        "Event store: sqlite:///<path> (embedded) or postgresql://user@host:port/db.",
    )
    root_url: str = _setting(
        "http://127.0.0.1:8080",
        "Public root URL that clients use (TASKCLUSTER_ROOT_URL).",
    )
    root_access_token: str = _setting(
        "", "Access token of the static/root client (scope '*'); empty disables it.", secret=True
    )
    secret_key: str = _setting(
        "",
        "Deployment key that encrypts access tokens at rest (Fernet key, urlsafe base64).",
        secret=True,
    )
    amqp_url: str = _setting("", "RabbitMQ URL for Pulse messages; empty publishes nothing.")
    claim_timeout: int = _setting(1200, "Seconds a claim lasts before it must be reclaimed.")
    data_dir: str = _setting(".cairn", "Directory for the embedded database, keys and blobs.")
    blob_dir: str = _setting("", "Directory of the object store; default <data_dir>/objects.")
    reaper_interval: float = _setting(
        5.0, "Seconds between checks for expired claims, deadlines and expiry."
    )
    max_body_bytes: int = _setting(10 * 1024 * 1024, "Largest accepted request body, in bytes.")
    unsigned_body_bytes: int = _setting(
        1024 * 1024,
        "Largest accepted body of an unsigned request, in bytes: read and checked before its sender is known.",
    )
    hawk_nonces: int = _setting(
        250_000,
        "Hawk nonces a process remembers against replay with the memory store (about 180 bytes each), "
        "for at most 30 minutes each.",
    )
    hawk_nonce_store: str = _setting(
        "",
        "Where Hawk nonces are remembered: 'database' (shared by every process on the database, so a replay "
        "is refused whichever process it reaches) or 'memory' (this process only); empty for database on "
        "PostgreSQL, memory on SQLite.",
    )
    client_last_used_delay: float = _setting(
        6 * 3600.0,
        "Seconds a client's lastDateUsed may lag behind its use before a request moves it again.",
    )
    request_threads: int = _setting(
        8,
        "Requests whose blocking work (Hawk, checks, the database) runs at once on request threads, and short "
        "requests at once on the event loop; more wait their turn.",
    )
    short_work: str = _setting(
        "loop",
        "Where a short request's blocking work runs (the queue's task commands and task reads): 'loop' (on the "
        "event loop, no hand-over to a request thread; PostgreSQL's waits are the loop's) or 'threads' (on the "
        "request threads, like every other request).",
    )
    anonymous_role: str = _setting(
        "public",
        "The 'anonymous' role a new deployment creates at its first start, granted to every request: 'public' "
        "(Taskcluster's public read scopes, e.g. queue:get-artifact:public/*) or 'private' (no scopes: every read "
        "needs credentials); empty creates none. Later starts leave the role as it is.",
    )
    header_timeout: float = _setting(10.0, "Seconds a client has to send a request's headers; slower gets a 408.")
    body_timeout: float = _setting(
        60.0, "Seconds a client has to send a request's body once its headers (or its last 64 KB) are in."
    )
    max_requests: int = _setting(
        512, "Requests a server process handles at once (long polls apart); more are answered 503 at once."
    )
    max_long_polls: int = _setting(
        256, "Long polls (claimWork, the event stream) a server process holds open at once; more get a 503."
    )
    log_level: str = _setting("info", "Log level: debug, info, warning or error.")
    log_format: str = _setting(
        "text", "Log format: 'text' (one readable line a record) or 'json' (one JSON object a line, RFC 35 fields)."
    )

    github_webhook_secret: str = _setting(
        "",
        "The GitHub App's webhook secret: deliveries to /api/github/v1/github must be signed with it "
        "(X-Hub-Signature-256); empty refuses every delivery.",
        secret=True,
    )

    # notify: each channel is configured by its settings; an unconfigured one sends nothing.
    smtp_url: str = _setting(
        "", "SMTP server for e-mail: smtp://[user:password@]host:port (STARTTLS when offered) or smtps://...",
        secret=True,
    )
    email_from: str = _setting("cairn@localhost", "The From address of notification e-mails.")
    slack_token: str = _setting("", "Slack bot token for chat.postMessage; empty: no Slack.", secret=True)
    slack_api_url: str = _setting("https://slack.com/api/", "Base URL of Slack's Web API.")
    matrix_base_url: str = _setting("", "Matrix homeserver URL for the client-server API; empty: no Matrix.")
    matrix_access_token: str = _setting("", "Access token of Cairn's Matrix user.", secret=True)
    matrix_user_id: str = _setting("", "Cairn's Matrix user id (@cairn:example.org).")

    # GitHub: Cairn acts as a GitHub App; without an app id nothing is sent to GitHub.
    github_app_id: str = _setting("", "The GitHub App's id; empty: GitHub deliveries are recorded but not acted on.")
    github_private_key: str = _setting("", "The GitHub App's private key (PEM text).", secret=True)
    github_private_key_file: str = _setting("", "A file holding the GitHub App's private key (PEM), instead of the text.")
    github_api_url: str = _setting("https://api.github.com", "Base URL of GitHub's REST API (another for GitHub Enterprise).")

    def __post_init__(self) -> None:
        if self.anonymous_role not in ("", "public", "private"):
            raise ValueError(f"{PREFIX}ANONYMOUS_ROLE must be 'public', 'private' or empty, not {self.anonymous_role!r}")
        if self.short_work not in ("", "loop", "threads"):
            raise ValueError(f"{PREFIX}SHORT_WORK must be 'loop' or 'threads', not {self.short_work!r}")
        if self.hawk_nonce_store not in ("", "database", "memory"):
            raise ValueError(
                f"{PREFIX}HAWK_NONCE_STORE must be 'database' or 'memory', not {self.hawk_nonce_store!r}"
            )

    @property
    def nonce_store(self) -> str:
        """Where Hawk nonces are remembered: the setting, else by back end."""
        return self.hawk_nonce_store or ("database" if self.backend == "postgres" else "memory")

    @property
    def short_work_on_loop(self) -> bool:
        """Whether short requests' blocking work runs on the event loop (``api/request_threads.py``)."""
        return self.short_work in ("", "loop")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _convert(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url.startswith(("postgresql:", "postgres:")) else "sqlite"

    @property
    def sqlite_path(self) -> str:
        return self.database_url.removeprefix("sqlite:///")

    @property
    def object_dir(self) -> str:
        return self.blob_dir or os.path.join(self.data_dir, "objects")

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(variable, default, help) for every setting, for --help output."""
        rows = []
        for f in dataclasses.fields(cls):
            default = "" if f.metadata["secret"] else str(f.default)
            rows.append((PREFIX + f.name.upper(), default, f.metadata["help"]))
        return rows


def _convert(f: dataclasses.Field, raw: str) -> Any:
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ValueError(f"{PREFIX}{f.name.upper()} must be a number, not {raw!r}") from None
    return raw
