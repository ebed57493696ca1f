"""SSRF guard adapter: parses with httpx's own URL parser, resolves, applies `ssrf`'s rules.

The parser is the one the transport uses, so the guard and the connection can never disagree on
which host a URL names. The resolver is injectable (tests stub it; production uses
`socket.getaddrinfo`), and `resolve` returns the address the sender must connect to: the checked
address is pinned, so a DNS answer that changes between check and connect (rebinding) cannot
redirect the request (docs/threat-model.md, webhooks).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from datetime import datetime

import httpx
import sqlalchemy as sa

from alerts.delivery.errors import UnsafeUrlError
from alerts.delivery.ssrf import (
    Approved,
    IPAddress,
    SsrfPolicy,
    Target,
    check_target,
    choose_address,
)
from careteam import audit_store
from careteam.audit import Actor

audit_log = logging.getLogger("alerts.delivery.audit")

Resolver = Callable[[str, int], Sequence[IPAddress]]


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, through the system resolver.

    Raises:
        UnsafeUrlError: the name does not resolve (field ``"url.address"``).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrlError("url.address", f"{host!r} does not resolve: {exc}") from exc
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def check_url(url: str, policy: SsrfPolicy) -> Target:
    """Static SSRF checks of a webhook URL (scheme, credentials, port, literal addresses).

    Raises:
        UnsafeUrlError: the URL does not parse or is refused (field ``"url"``).
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UnsafeUrlError("url", f"not a valid URL: {exc}") from exc
    return check_target(parsed.scheme, parsed.host, parsed.port, bool(parsed.userinfo), policy)


def resolve(url: str, policy: SsrfPolicy, resolver: Resolver) -> tuple[Target, Approved]:
    """Check `url` statically and after resolution; return it with the address to connect to.

    The approval names the operator's allow-listed network when one admitted a private address:
    the caller audits that use (`audit_allowed`).

    Raises:
        UnsafeUrlError: refused before or after resolution, or the name does not resolve.
    """
    target = check_url(url, policy)
    if target.literal is not None:
        addresses: Sequence[IPAddress] = [target.literal]
    else:
        addresses = resolver(target.host, target.port)
    return target, choose_address(target, addresses, policy)


def audit_allowed(
    conn: sa.Connection,
    endpoint_id: str,
    target: Target,
    approved: Approved,
    *,
    action: str,
    at: datetime,
) -> None:
    """Record, in the caller's transaction, that an allow-listed private network admitted a
    webhook target (nothing when it did not).

    Written to the audit trail (action ``webhook.private_target``, the endpoint as entity, host,
    address and network in the detail) and logged at WARNING under ``alerts.delivery.audit``;
    neither holds the URL (its path may carry a receiver's token).
    """
    if approved.allowed_by is None:
        return
    audit_log.warning(
        "endpoint %s %s: host %s at private address %s allowed by HV_DELIVERY_ALLOW_CIDRS %s",
        endpoint_id,
        action,
        target.host,
        approved.address,
        approved.allowed_by,
    )
    audit_store.append(
        conn,
        audit_store.record(
            Actor("system", f"webhook-{action}", purpose="HV_DELIVERY_ALLOW_CIDRS"),
            "webhook.private_target",
            entity_kind="webhook_endpoint",
            entity_id=endpoint_id,
            detail={
                "host": target.host,
                "address": str(approved.address),
                "network": str(approved.allowed_by),
                "step": action,
            },
        ),
        at,
    )
