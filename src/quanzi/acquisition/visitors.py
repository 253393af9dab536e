"""Who is visiting a public page: the client address (behind trusted proxies), its network,
a coarse device class, and keyed digests of network and device for the shared-device signal.

The address itself is never stored: it lives in memory for the rate-limit window only. What is
stored is `net_digest` = the workspace key's blind index of the client's /24 (IPv4) or /48
(IPv6) network, and `device_digest` = the blind index of that network + "|" + the User-Agent.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from starlette.requests import Request

from quanzi.config import get_settings
from quanzi.kit.crypto import WorkspaceKey

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_USER_AGENT = 512  # characters of the User-Agent that go into the device digest


@dataclass(frozen=True)
class Visitor:
    """One request's client: its address (memory only), network and User-Agent."""

    address: str
    network: str | None  # "203.0.113.0/24", "2001:db8:1::/48"; None when not an IP address
    user_agent: str

    @property
    def rate_key(self) -> str:
        """The per-client rate-limit key: the address, or its /64 for IPv6 (one subscriber
        gets a whole /64, so counting single IPv6 addresses would count nothing)."""
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            return self.address
        if ip.version == 6:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return self.address

    def digests(self, key: WorkspaceKey) -> tuple[str | None, str | None]:
        """(net_digest, device_digest) under the workspace key; (None, None) without a network."""
        if self.network is None:
            return None, None
        return (
            key.blind_index("network", self.network),
            key.blind_index("device", f"{self.network}|{self.user_agent}"),
        )


@lru_cache(maxsize=4096)
def network_of(address: str) -> str | None:
    """The /24 of an IPv4 address or the /48 of an IPv6 one (an IPv4-mapped IPv6 address
    counts as IPv4); None for anything that is not an IP address."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@lru_cache(maxsize=8)
def _trusted(spec: str) -> tuple[bool, tuple[Network, ...]]:
    """(trust everyone, the trusted networks) of a QUANZI_TRUSTED_PROXIES value."""
    nets: list[Network] = []
    for item in (p.strip() for p in spec.split(",")):
        if item == "*":
            return True, ()
        if item:
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"QUANZI_TRUSTED_PROXIES: {item!r} is not an address or network"
                ) from None
    return False, tuple(nets)


def is_trusted_proxy(address: str) -> bool:
    return _is_trusted(get_settings().trusted_proxies, address)


@lru_cache(maxsize=4096)
def _is_trusted(spec: str, address: str) -> bool:
    everyone, nets = _trusted(spec)
    if everyone:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in nets)


def client_address(request: Request) -> str:
    """The client's address: the peer, or when the peer is a trusted proxy the right-most
    address in X-Forwarded-For that is not itself a trusted proxy."""
    peer = request.client.host if request.client else ""
    if not peer or not is_trusted_proxy(peer):
        return peer or "unknown"
    forwarded = request.headers.get("x-forwarded-for", "")
    for hop in reversed(forwarded.split(",")):
        hop = hop.strip()
        if not hop:
            continue
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a forged or garbled entry: trust nothing beyond the proxy
        if not is_trusted_proxy(hop):
            return hop
    return peer


def visitor_of(request: Request) -> Visitor:
    address = client_address(request)
    user_agent = request.headers.get("user-agent", "")[:MAX_USER_AGENT]
    return Visitor(address, network_of(address), user_agent)
