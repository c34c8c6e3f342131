"""What the per-user session index records about the client of a request.

A :class:`ClientInfo` is made once, at configuration time, from the
``session_suite.user_index.*`` settings (parsed elsewhere). Its
:meth:`~ClientInfo.ip` and :meth:`~ClientInfo.describe` run per request,
return JSON-able values and never raise on what the client sends.

The client address is the socket peer (``REMOTE_ADDR``) unless
``trusted_proxies`` says how far ``X-Forwarded-For`` may be believed.
WebOb's ``request.client_addr`` returns the *first* entry of that header,
which any client can forge, so it is never used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import functools
import ipaddress
import os
import re
from typing import TYPE_CHECKING, Any
from pyramid.exceptions import ConfigurationError

if TYPE_CHECKING:
    import geoip2.database
    from pyramid.request import Request

PREFIX = 'session_suite.user_index.'
EXTRA = 'pyramid_session_suite[user_index]'

#: Longest ``User-Agent`` kept (and parsed), in characters.
MAX_UA_LENGTH = 512
#: Distinct ``User-Agent`` strings whose label is remembered.
UA_CACHE_SIZE = 1024
#: client addresses remembered, per worker
IP_CACHE_SIZE = 4096
#: ``X-Forwarded-For`` entries looked at, at most, from the right.
MAX_FORWARDED = 32

_BROWSERS: dict[str | None, str] = {
    'Mobile Safari': 'Safari',
    'Mobile Safari UI/WKWebView': 'In-app browser',
    'Chrome Mobile': 'Chrome',
    'Chrome Mobile iOS': 'Chrome',
    'Chrome Mobile WebView': 'Android WebView',
    'Firefox Mobile': 'Firefox',
    'Firefox iOS': 'Firefox',
    'Edge Mobile': 'Edge',
    'Opera Mobile': 'Opera',
    'Python Requests': 'python-requests',
}
_SYSTEMS: dict[str | None, str] = {
    'Mac OS X': 'macOS',
    'Chrome OS': 'ChromeOS',
}
_APPLE_HANDHELDS = {'iPhone', 'iPad', 'iPod'}
_MOBILE_SYSTEMS = set(
    'Android,iOS,iPadOS,Windows Phone,KaiOS,BlackBerry OS'.split(',')
)
_WITH_PORT = re.compile(r'\[(.+)\](?::\d{1,5})?|([^:]+):\d{1,5}', re.ASCII)
_WARM_UP_UA = (
    'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientInfo:
    """Reads the client address, browser and location of requests.

    :param trusted_proxies: ``None`` to use the socket address only; an
        ``int`` *N*, the number of proxies in front of the application,
        to take the *N*-th ``X-Forwarded-For`` entry from the right; or a
        list of CIDR strings, to walk the header from the right while the
        address is inside one of these networks.
    :param store_ip: ``'full'``, ``'truncated'`` (the /24 network of an
        IPv4 address, the /48 of an IPv6 one) or ``'none'``.
    :param geoip_db: path of a MaxMind-format City or Country database
        (GeoIP2, GeoLite2, DB-IP lite …), opened once, here. Needs
        ``geoip2``.
    :param geo: ``'city'``, ``'country'`` or ``'off'``.
    :raises ConfigurationError: naming the setting at fault, or the
        ``pyramid_session_suite[user_index]`` extra if ``ua-parser`` is
        missing.
    """

    def __init__(
        self,
        trusted_proxies: int | Sequence[str] | None = None,
        store_ip: str = 'full',
        geoip_db: str | os.PathLike[str] | None = None,
        geo: str = 'city',
    ) -> None:
        self.store_ip = _one_of('store_ip', store_ip, 'full truncated none')
        self.geo = _one_of('geo', geo, 'city country off')
        self._hops, self._networks = _trusted_proxies(trusted_proxies)
        #: no proxy is trusted: the address is the socket's
        self._direct = self._hops is None and self._networks is None
        try:
            from ua_parser import parse
        except ImportError:
            raise ConfigurationError(
                f'the session user index needs ua-parser: '
                f'pip install "{EXTRA}"'
            ) from None
        parse(_WARM_UP_UA)  # builds the matchers now, not on a request
        self._summary = functools.lru_cache(maxsize=UA_CACHE_SIZE)(
            functools.partial(_summarize, parse)
        )
        self._ip = functools.lru_cache(maxsize=IP_CACHE_SIZE)(self._stored_ip)
        self._reader = self._lookup = None
        if geoip_db is not None and self.geo != 'off':
            self._reader, self._lookup = _open_geoip(geoip_db)

    def summary(self, ua: str) -> tuple[str, bool]:
        """``(label, mobile)`` of a User-Agent, e.g. ``('Firefox on
        Linux', False)``."""
        return self._summary(ua[:MAX_UA_LENGTH])

    def close(self) -> None:
        """Close the GeoIP database, if any."""
        if self._reader is not None:
            self._reader.close()

    def ip(self, request: Request) -> str | None:
        """Return the client address of ``request`` as ``store_ip`` says
        to store it, or ``None``. (Asked on every request of a logged-in
        session: remembered by the addresses it comes from.)"""
        if self._direct:
            environ = getattr(request, 'environ', None)
            if environ is not None:
                return self._ip(environ.get('REMOTE_ADDR'), '')
        return self._ip(*self._addresses(request))

    def _stored_ip(self, remote: object, forwarded: str) -> str | None:
        return self._stored(self._address(remote, forwarded))

    def describe(self, request: Request) -> dict[str, Any]:
        """Return ``{'ip', 'ua', 'label', 'mobile', 'location'}`` for the
        client of ``request``, e.g. ``'Firefox on Linux'`` and
        ``'Berlin, Germany'``.

        ``mobile`` is true for phones and tablets. ``location`` is
        ``None`` without a database, for private or unknown addresses and
        with ``geo = off``; it is looked up with the full address, whatever
        ``store_ip`` keeps.
        """
        addr = self._client_addr(request)
        ua = _header(request, 'User-Agent')[:MAX_UA_LENGTH]
        label, mobile = self._summary(ua)
        return {
            'ip': self._stored(addr),
            'ua': ua,
            'label': label,
            'mobile': mobile,
            'location': self._locate(addr),
        }

    def _addresses(self, request: Request) -> tuple[object, str]:
        """The socket address of ``request``, and its ``X-Forwarded-For``
        header when proxies are trusted (else ``''``)."""
        remote = getattr(request, 'remote_addr', None)
        if remote is None:  # DummyRequest has no remote_addr
            remote = getattr(request, 'environ', {}).get('REMOTE_ADDR')
        if self._hops is None and self._networks is None:
            return remote, ''
        return remote, _header(request, 'X-Forwarded-For')

    def _client_addr(self, request: Request) -> IPAddress | None:
        return self._address(*self._addresses(request))

    def _address(self, remote: object, forwarded: str) -> IPAddress | None:
        remote = _parse_ip(remote)
        if self._hops is None and self._networks is None:
            return remote
        if self._networks is not None and not self._trusted(remote):
            return remote
        if self._hops is not None:
            entries = forwarded.rsplit(',', self._hops)
            if not forwarded or len(entries) < self._hops:
                return remote  # fewer entries than proxies
            entries = entries[-self._hops :]
        else:
            entries = forwarded.rsplit(',', MAX_FORWARDED)
        client = remote
        for entry in reversed(entries):  # nearest proxy first
            addr = _parse_ip(entry)
            if addr is None:
                break  # garbage: keep the last valid address
            client = addr
            if self._networks is not None and not self._trusted(addr):
                break
        return client

    def _trusted(self, addr: IPAddress | None) -> bool:
        assert self._networks is not None  # only called with networks
        return addr is not None and any(addr in n for n in self._networks)

    def _stored(self, addr: IPAddress | None) -> str | None:
        if addr is None or self.store_ip == 'none':
            return None
        if self.store_ip == 'truncated':
            prefix = 24 if addr.version == 4 else 48
            network = ipaddress.ip_network((addr, prefix), strict=False)
            return str(network.network_address)
        return str(addr)

    def _locate(self, addr: IPAddress | None) -> str | None:
        if self._lookup is None or addr is None or not addr.is_global:
            return None
        try:
            record = self._lookup(str(addr))
        except Exception:  # not found, or a damaged database
            return None
        country = record.country.name
        city = getattr(record, 'city', None)
        city = city.name if city is not None and self.geo == 'city' else None
        if city and country:
            return f'{city}, {country}'
        return country or city or None


def _one_of(name: str, value: str, choices: str) -> str:
    if value not in choices.split():
        raise ConfigurationError(
            f'{PREFIX}{name}: must be one of {", ".join(choices.split())}, '
            f'not {value!r}'
        )
    return value


def _trusted_proxies(
    value: int | Sequence[str] | None,
) -> tuple[int | None, list[IPNetwork] | None]:
    """Return ``(hops, networks)``, one of them ``None`` or both."""
    key = PREFIX + 'trusted_proxies'
    if not value:
        return None, None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ConfigurationError(f'{key}: must be 0 or more, not {value}')
        return value, None
    try:  # (True is not iterable: that TypeError is caught)
        return None, [ipaddress.ip_network(v, strict=False) for v in value]  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f'{key}: expected a number of proxies or a list of networks '
            f'(CIDR): {exc}'
        ) from None


def _open_geoip(
    path: str | os.PathLike[str],
) -> tuple[geoip2.database.Reader, Callable[[str], Any]]:
    key = PREFIX + 'geoip_db'
    try:
        import geoip2.database
    except ImportError:
        raise ConfigurationError(
            f'{key}: reading a GeoIP database needs the geoip2 package '
            '(pip install geoip2)'
        ) from None
    if not os.path.isfile(path):
        raise ConfigurationError(f'{key}: no such file: {str(path)!r}')
    try:
        reader = geoip2.database.Reader(os.fspath(path))
    except Exception as exc:
        raise ConfigurationError(
            f'{key}: cannot read {str(path)!r}: {exc}'
        ) from None
    kind = reader.metadata().database_type
    # geoip2 refuses .country() on a City database, so use what it holds.
    if 'City' in kind:
        return reader, reader.city
    if 'Country' in kind:
        return reader, reader.country
    reader.close()
    raise ConfigurationError(
        f'{key}: {str(path)!r} is a {kind!r} database; '
        'a City or Country one is needed'
    )


def _header(request: Request, name: str) -> str:
    headers = getattr(request, 'headers', None)
    value = headers.get(name) if headers is not None else None
    if value is None:
        environ = getattr(request, 'environ', None) or {}
        value = environ.get('HTTP_' + name.upper().replace('-', '_'))
    return value if isinstance(value, str) else ''


def _parse_ip(value: object) -> IPAddress | None:
    """Return ``value`` as a normalized address, or ``None`` if it is not
    one. Accepts ``[v6]:port`` and ``v4:port``."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    value = value.strip()
    with_port = _WITH_PORT.fullmatch(value)
    if with_port is not None:
        value = with_port[1] or with_port[2]
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if addr.version == 6:
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr.scope_id:
            return ipaddress.IPv6Address(int(addr))
    return addr


def _family(part: Any) -> str | None:
    family = getattr(part, 'family', None)
    return None if family in (None, '', 'Other') else family


def _summarize(parse: Callable[[str], Any], ua: str) -> tuple[str, bool]:
    """Return ``(label, mobile)`` for a ``User-Agent`` string."""
    try:
        result = parse(ua)
    except Exception:
        return 'Unknown browser', False
    browser = _family(result.user_agent)
    system = _family(result.os)
    device = _family(result.device)
    mobile = device != 'Spider' and (
        device in _APPLE_HANDHELDS
        or device == 'Generic Smartphone'
        or system in _MOBILE_SYSTEMS
    )
    if device in _APPLE_HANDHELDS:
        system = device  # "Safari on iPad" says more than "on iOS"
    elif device == 'Spider':
        system = None  # "Googlebot", whatever phone it pretends to be
    browser = _BROWSERS.get(browser, browser)
    system = _SYSTEMS.get(system, system)
    if browser and system:
        return f'{browser} on {system}', mobile
    if browser:
        return browser, mobile  # "curl", "Googlebot"
    if system:
        return f'Unknown browser on {system}', mobile
    return 'Unknown browser', mobile
