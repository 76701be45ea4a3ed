"""Sending a notification's e-mail through an SMTP server (aiosmtplib).

``CAIRN_SMTP_URL`` names the server: ``smtp://[user:password@]host[:port]``
(port 25 by default; STARTTLS whenever the server offers it) or
``smtps://...`` (implicit TLS, port 465 by default). The mail has a
plain-text part (the Markdown as written, then the link) and an HTML part
(the Markdown rendered by markdown-it, raw HTML in it shown as text, the
link as a button). Its Message-ID is the notification's id, so a receiver
can tell a repeat.

An answer in the 5xx range (a refused recipient, say) is a permanent
failure; a server that cannot be reached, times out or answers 4xx is a
failure for now.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlparse

import aiosmtplib
from markdown_it import MarkdownIt

from cairn.consumers.notify.delivery_failure import DeliveryFailed

SEND_TIMEOUT = 30.0
_markdown = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])


@dataclass(frozen=True)
class SmtpServer:
    hostname: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ValueError(f"CAIRN_SMTP_URL must be smtp://[user:password@]host:port or smtps://..., not {url!r}")
        implicit_tls = parsed.scheme == "smtps"
        return cls(
            hostname=parsed.hostname,
            port=parsed.port or (465 if implicit_tls else 25),
            implicit_tls=implicit_tls,
            username=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
        )


def render_html(subject: str, content: str, link: dict[str, str] | None) -> str:
    button = ""
    if link:
        button = (
            f'<p><a href="{html.escape(link["href"])}" style="display:inline-block;padding:8px 16px;'
            f'background:#1a73e8;color:#fff;text-decoration:none;border-radius:4px">{html.escape(link["text"])}</a></p>'
        )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(subject)}</title></head>'
        f'<body style="font-family:sans-serif">{_markdown.render(content)}{button}</body></html>'
    )


def render_text(content: str, link: dict[str, str] | None) -> str:
    return f"{content}\n\n{link['text']}: {link['href']}\n" if link else f"{content}\n"


def build_message(sender: str, notification_id: str, email: dict[str, Any]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email["address"]
    message["Subject"] = email["subject"]
    message["Message-ID"] = f"<{notification_id}@cairn.notify>"
    if email.get("replyTo"):
        message["Reply-To"] = email["replyTo"]
    link = email.get("link")
    message.set_content(render_text(email["content"], link))
    message.add_alternative(render_html(email["subject"], email["content"], link), subtype="html")
    return message


class EmailSender:
    def __init__(self, smtp_url: str, sender: str, timeout: float = SEND_TIMEOUT):
        self.server = SmtpServer.from_url(smtp_url)
        self.sender = sender
        self.timeout = timeout

    async def send(self, notification_id: str, email: dict[str, Any]) -> None:
        server = self.server
        message = build_message(self.sender, notification_id, email)
        try:
            await aiosmtplib.send(
                message,
                hostname=server.hostname,
                port=server.port,
                username=server.username,
                password=server.password,
                use_tls=server.implicit_tls,
                start_tls=False if server.implicit_tls else None,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as e:
            codes = [r.code for r in e.recipients]
            permanent = all(code >= 500 for code in codes)
            raise DeliveryFailed(f"SMTP refused the recipient: {e}", permanent=permanent) from None
        except aiosmtplib.SMTPResponseException as e:
            raise DeliveryFailed(f"SMTP answered {e.code}: {e.message}", permanent=e.code >= 500) from None
        except (aiosmtplib.SMTPException, OSError) as e:
            raise DeliveryFailed(f"SMTP server unavailable: {e}") from None
