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


def well_formed(header: str) -> str:
    """``header`` with only its well-formed ``name=value`` segments (in
    linear time)."""
    kept = []
    for segment in header.split(';'):
        segment = segment.strip()
        if _WELL_FORMED.fullmatch(segment):
            kept.append(segment)
    return '; '.join(kept)
