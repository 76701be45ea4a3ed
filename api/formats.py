"""The JSON Schema formats Cairn's schemas use, checked cheaply and strictly.

jsonschema's optional format libraries are heavy (one builds dozens of
parsers at import time) and some are GPL; these few checks cover every
``format`` in ``schemas/``: date-time, uri, hostname, ipv4, ipv6, regex, email.
"""

from __future__ import annotations

import ipaddress
import re

from jsonschema import FormatChecker

from cairn.domain import timestamps

# RFC 3986: a scheme, then anything printable without spaces; hierarchical
# URIs with an authority must name a host.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s\x00-\x1f\x7f]*\Z")
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z"
)

checker = FormatChecker(formats=())


@checker.checks("date-time")
def is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return timestamps.is_date_time(value)


@checker.checks("uri")
def is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _URI.match(value):
        return False
    rest = value.split(":", 1)[1]
    return not rest.startswith("//") or len(rest) > 2


@checker.checks("hostname")
def is_hostname(value: object) -> bool:
    return not isinstance(value, str) or bool(_HOSTNAME.match(value))


@checker.checks("ipv4", raises=ValueError)
def is_ipv4(value: object) -> bool:
    return not isinstance(value, str) or bool(ipaddress.IPv4Address(value))


@checker.checks("ipv6", raises=ValueError)
def is_ipv6(value: object) -> bool:
    return not isinstance(value, str) or bool(ipaddress.IPv6Address(value))


@checker.checks("regex", raises=re.error)
def is_regex(value: object) -> bool:
    return not isinstance(value, str) or bool(re.compile(value))


# An address with one @, a local part and a domain, nothing blank: what a
# mail server can be asked to deliver to (ajv's "fast" e-mail check, as
# Taskcluster's API uses).
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+\Z")


@checker.checks("email")
def is_email(value: object) -> bool:
    return not isinstance(value, str) or bool(_EMAIL.match(value))
