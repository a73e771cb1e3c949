"""Which browser origins may open a websocket (pure: headers in, yes or no out)."""

from __future__ import annotations

import pytest

from surge.origins import normal_origin, origin_allowed

LISTED = ("https://console.12345.example:443",)


@pytest.mark.parametrize(
    ("origin", "scheme", "host", "allowed"),
    [
        (None, "ws", "surge.local:8000", True),  # telephony and scripts send no Origin
        ("http://surge.local:8000", "ws", "surge.local:8000", True),  # the consoles' own origin
        ("http://SURGE.local:8000", "ws", "surge.local:8000", True),
        ("https://surge.local", "wss", "surge.local", True),
        ("https://surge.local", "wss", "surge.local:443", True),
        ("http://surge.local", "ws", "surge.local:80", True),
        ("http://[::1]:8000", "ws", "[::1]:8000", True),
        ("https://console.12345.example", "wss", "surge.local", True),  # listed
        ("https://surge.local:8000", "ws", "surge.local:8000", False),  # https page, ws socket
        ("http://surge.local:8000", "wss", "surge.local:8000", False),
        ("http://surge.local:8001", "ws", "surge.local:8000", False),
        ("http://evil.example", "ws", "surge.local:8000", False),
        ("http://surge.local.evil.example", "ws", "surge.local", False),
        ("null", "ws", "surge.local:8000", False),  # a sandboxed frame or a file
        ("http://surge.local:8000", "ws", None, False),
        ("http://user@surge.local:8000", "ws", "surge.local:8000", False),
        ("http://surge.local:99999", "ws", "surge.local:99999", False),
    ],
)
def test_origins(origin: str | None, scheme: str, host: str | None, allowed: bool) -> None:
    assert origin_allowed(origin, scheme=scheme, host=host, allowed=LISTED) is allowed


def test_normal_origin_writes_the_port_out_and_refuses_paths() -> None:
    assert normal_origin("HTTPS://A.Example") == "https://a.example:443"
    assert normal_origin("http://a.example:8080/") == "http://a.example:8080"
    assert normal_origin("http://a.example/x") is None
    assert normal_origin("http://a.example?x=1") is None
    assert normal_origin("") is None
