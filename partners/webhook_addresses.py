"""Where webhooks may be sent: public addresses only, unless the deployment says otherwise.

A signed POST to an address of the server's own network (loopback, RFC 1918, unique-local IPv6)
or to a link-local one (169.254.169.254 is the cloud metadata service) would let whoever
registers an endpoint make the server call what only it can reach. So an endpoint's address is
checked twice:

- when it is registered, if it is written as an IP address or a localhost name (no DNS lookup
  then: a name may resolve differently by the time of a delivery);
- at each delivery, where the host name is resolved once and the connection made to an
  admitted resolved address only, so a name that resolves to 127.0.0.1 is refused too. TLS still
  checks the certificate against the host name in the endpoint's address.

WEBHOOK_ALLOW_PRIVATE_ADDRESSES admits loopback and private addresses, for receivers on the
deployment's own network; link-local, multicast and unspecified addresses are never admitted.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import ssl
import urllib.request
from typing import Any

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The endpoint's host is, or resolves only to, an address webhooks are not sent to."""


def address_refusal(address: IPAddress) -> str | None:
    """What kind of address `address` is when webhooks may not be sent to it ("a loopback
    address"), or None when they may. An IPv4 address written as IPv6 (::ffff:127.0.0.1, or
    6to4) counts as the IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or address.sixtofour or address
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_global or settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return None
    if address.is_loopback:
        return "a loopback address"
    return "a private or reserved address"


def host_refusal(host: str) -> str | None:
    """`address_refusal` for a host written as an IP address or a localhost name (RFC 6761);
    None for any other name, which only a delivery resolves."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return address_refusal(ipaddress.IPv4Address("127.0.0.1"))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return address_refusal(address)


def receiver_address(host: str, port: int) -> str:
    """Resolve `host` once and return the first of its addresses webhooks may be sent to.

    Raises AddressRefused when every address it resolves to is refused, and socket.gaierror
    (an OSError) when it does not resolve."""
    refused: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        text = str(sockaddr[0])
        refusal = address_refusal(ipaddress.ip_address(text.partition("%")[0]))
        if refusal is None:
            return text
        refused.append(f"{text}, {refusal}")
    raise AddressRefused(
        f"Not sent: {host} resolves to {'; '.join(refused)}; webhooks are sent to public "
        "addresses only (WEBHOOK_ALLOW_PRIVATE_ADDRESSES admits loopback and private ones)."
    )


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to `address` whatever the host name says; the Host header keeps the name."""

    def __init__(self, host: str, *, address: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._create_connection = functools.partial(_connect_to, address)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to `address`; the TLS handshake names, and the certificate must match, the
    host name."""

    def __init__(self, host: str, *, address: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._create_connection = functools.partial(_connect_to, address)


def _connect_to(address: str, target: tuple[str, int], *args: Any) -> socket.socket:
    return socket.create_connection((address, target[1]), *args)


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_PinnedHTTPConnection, address=self.address), req)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, address: str, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self.address = address
        self.context = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(
            functools.partial(_PinnedHTTPSConnection, address=self.address),
            req,
            context=self.context,
        )


def pinned_handlers(address: str, context: ssl.SSLContext) -> list[urllib.request.BaseHandler]:
    """urllib handlers that send HTTP and HTTPS requests to `address`, and no proxy (the
    address checked must be the one connected to)."""
    return [
        urllib.request.ProxyHandler({}),
        _PinnedHTTPHandler(address),
        _PinnedHTTPSHandler(address, context),
    ]
