"""Where the http.* tools may connect: the public internet, and the hosts an operator allows.

A workflow author must not be able to make the server call itself or its neighbours: its own
endpoints (admin, /readyz, the token endpoint), the database and cache ports, a cloud's metadata
service (169.254.169.254). So a URL's host is resolved first and every address it resolves to
must be globally routable, unless the host or the address is in HTTP_TOOLS_ALLOWED_HOSTS (names,
addresses or CIDRs, e.g. `127.0.0.1` for local testing). Only http and https. The tools do not
follow redirects, so a redirect cannot lead anywhere unchecked.
"""

import ipaddress
import socket
from functools import cache

import httpx
from django.conf import settings

from workflows.engine.api import Fail

SCHEMES = ("http", "https")


def destination_check(url: str) -> None:
    """Raise Fail (not retried) naming the rule when the tools may not call `url`."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        _refuse(f"{url!r} is not a URL: {exc}")
    if parsed.scheme not in SCHEMES:
        _refuse(f"{url}: scheme '{parsed.scheme}' is not allowed (http or https only)")
    host = parsed.host
    if not host:
        _refuse(f"{url}: no host")
    names, networks = _allowed(tuple(settings.HTTP_TOOLS_ALLOWED_HOSTS))
    if host.lower() in names:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Fail(f"{url}: cannot resolve {host}: {exc}", code="http_error") from None
    for *_, address in found:
        ip = ipaddress.ip_address(address[0].split("%")[0])
        ip = getattr(ip, "ipv4_mapped", None) or ip
        if any(ip in network for network in networks):
            continue
        rule = _not_public(ip)
        if rule:
            _refuse(
                f"{url}: {host} is {ip}, a {rule} address; an operator may allow it in "
                "HTTP_TOOLS_ALLOWED_HOSTS"
            )


def _not_public(ip) -> str | None:
    """Why `ip` is not a public address, or None. IPv6 forms that carry an IPv4 address inside
    (6to4, Teredo) are judged by the address they carry."""
    for inner in (getattr(ip, "sixtofour", None), *(getattr(ip, "teredo", None) or ())):
        if inner is not None and _not_public(inner):
            return _not_public(inner)
    for rule in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{rule}"):
            return rule.replace("_", "-")
    return None if ip.is_global else "non-public"


@cache
def _allowed(entries: tuple[str, ...]):
    names, networks = set(), []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.lower())
    return frozenset(names), tuple(networks)


def _refuse(message: str):
    raise Fail(message, code="destination_refused", retryable=False)
