"""Reading a request's cookies safely, whatever its ``Cookie`` header
holds: every namespace and tween of the suite reads cookies through
:func:`readable_cookies`.

WebOb's parser has two weaknesses that a hostile or broken client can
reach. One cookie value that is not UTF-8 (``x="\\377"``) makes every
cookie lookup of the request raise, so a cookie planted by a neighbouring
site would break every request of its browser. And its regular expression
takes quadratic time on long runs of cookie-name characters without an
``=`` (a 16 KB header costs seconds of CPU). Both are defused here by
rewriting the request's ``Cookie`` header, keeping every well-formed
cookie.
"""

from __future__ import annotations

from collections.abc import MutableMapping
import re
from typing import TYPE_CHECKING
from webob.cookies import parse_cookie

if TYPE_CHECKING:
    from pyramid.request import Request

#: a header longer than this is checked segment by segment first (WebOb's
#: worst case for 512 bytes is a few milliseconds; for 16 KB, seconds)
LONG_HEADER = 512

#: environ key: the ``Cookie`` header already checked
CHECKED_KEY = 'session_suite.cookie_header'

_NAME = r"[\w~!@#$%^&*()+\-`.?|:/{}<>']+"
_VALUE = r"(?:\"[^\"]*\"|[\w~!@#$%^&*()+=\-`.?|:/{}<>'\\]*)"

#: a cookie whose parse by WebOb is linear: a name without ``=``, ``=``,
#: then a quoted or a plain value
_WELL_FORMED = re.compile(f'{_NAME}={_VALUE}')

#: a cookie that WebOb reads as it is written: a valid name (an RFC 6265
#: token, not starting with ``$``), ``=``, a plain value (no quotes, no
#: escapes, no spaces)
_PLAIN = re.compile(
    r"[A-Za-z0-9!#%&'*+\-.^_`|~][A-Za-z0-9!#$%&'*+\-.^_`|~]*"
    r"=[A-Za-z0-9_~!@#$%^&*()+=\-`.?|:/{}<>']*"
)

#: cookie names that WebOb drops (attributes of a ``Set-Cookie``)
_ATTRIBUTES = frozenset(
    {'path', 'comment', 'domain', 'max-age', 'secure', 'httponly',
     'expires', 'samesite'}
)  # fmt: skip

#: where WebOb keeps its parse of the ``Cookie`` header, with the header
_WEBOB_CACHE = 'webob._parsed_cookies'


def readable_cookies(request: Request) -> MutableMapping[str, str]:
    """``request.cookies``, readable whatever the Cookie header holds.

    In a long header, segments that are not well-formed cookies are
    dropped before WebOb parses it; values that are not UTF-8 are dropped
    too. The other cookies are kept.
    """
    environ = request.environ
    header = environ.get('HTTP_COOKIE', '')
    if len(header) > LONG_HEADER and environ.get(CHECKED_KEY) is not header:
        header = environ['HTTP_COOKIE'] = well_formed(header)
        environ[CHECKED_KEY] = header
    cached = environ.get(_WEBOB_CACHE)
    if cached is not None and cached[1] == header:
        return cached[0]  # type: ignore[no-any-return]
    # (no header: a test's request may carry its cookies otherwise)
    plain = plain_cookies(header) if header else None
    if plain is not None:
        # WebOb's own parse would give the same: it is kept for
        # ``request.cookies``
        environ[_WEBOB_CACHE] = (plain, header)
        return plain
    cookies: MutableMapping[str, str] = request.cookies
    try:
        len(cookies)
        return cookies
    except UnicodeDecodeError:
        pass
    kept: list[bytes] = []
    for name, value in parse_cookie(header):
        try:
            value.decode('utf-8')
        except UnicodeDecodeError:
            continue
        quoted = b''.join(
            b'\\%03o' % byte
            if byte in b'"\\' or byte < 32 or byte == 127
            else bytes([byte])
            for byte in value
        )
        kept.append(name + b'="' + quoted + b'"')
    header = environ['HTTP_COOKIE'] = b'; '.join(kept).decode('latin-1')
    environ[CHECKED_KEY] = header
    cookies = request.cookies
    return cookies


def plain_cookies(header: str) -> dict[str, str] | None:
    """The cookies of ``header`` by name (the last of a name wins, as in
    WebOb) when each of its cookies is plain (``name=value``, a value
    without quotes or escapes); ``None`` otherwise, for WebOb to parse."""
    cookies: dict[str, str] = {}
    if not header:
        return cookies
    match = _PLAIN.fullmatch
    for segment in header.split(';'):
        segment = segment.strip()
        if match(segment) is None:
            return None
        name, _, value = segment.partition('=')
        if name.lower() in _ATTRIBUTES:
            return None
        cookies[name] = value
    return cookies


def well_formed(header: str) -> str:
    """``header`` with only its well-formed ``name=value`` segments (in
    linear time)."""
    kept = []
    for segment in header.split(';'):
        segment = segment.strip()
        if _WELL_FORMED.fullmatch(segment):
            kept.append(segment)
    return '; '.join(kept)
