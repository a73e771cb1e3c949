"""Which browser origins may open the websockets: the service's own, and `SURGE_ALLOWED_ORIGINS`.

A browser says where the page that opens a socket came from (`Origin`); other clients (the
telephony side, scripts) send none and are not concerned.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PAGE_SCHEMES = {"ws": "http", "wss": "https"}  # a page over https opens wss sockets


def normal_origin(origin: str) -> str | None:
    """`scheme://host:port` in lower case with the port written out; None if it is no web origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS[scheme]}"


def origin_allowed(
    origin: str | None, *, scheme: str, host: str | None, allowed: Collection[str]
) -> bool:
    """No `Origin` passes; a browser's must be the service's own (`Host`, same scheme) or listed.

    `allowed` holds origins in their normal form (as Settings keeps them).
    """
    if origin is None:
        return True
    normal = normal_origin(origin)
    if normal is None:  # "null" (a sandboxed or local page) or nonsense
        return False
    if normal in allowed:
        return True
    page_scheme = _PAGE_SCHEMES.get(scheme)
    return (
        host is not None
        and page_scheme is not None
        and normal == normal_origin(f"{page_scheme}://{host}")
    )
