"""The hand-off flows.

Redirect (pull), on a site B that is not the hub::

    B/any-page  (GET, HTML, no session cookie, not tried lately)
      303 -> HUB/_session_suite/xd/export?dst=B&state=S&next=/any-page
             (B sets the state cookie S and a "tried" cookie)
      303 -> B/_session_suite/xd/import?next=/any-page&t=TOKEN
             (the hub mints a token for B bound to S; or &none=1)
      303 -> B/any-page  with B's session cookie set, first-party

Push: a link on the hub to ``B/_session_suite/xd/begin?next=<hub URL>``
runs the same flow and ends on ``next``; :func:`push_url` chains it
through every other site (e.g. right after a login on the hub, so that
each site has the new session at its next page view).

The hops are invisible: the hub's export leaves the hub's own cookie as
it was (an ended session's cookie is still there for the hub's next page
view to say why it ended), and a browser that kept the flow's cookies
lands on ``next`` exactly.

Script loader (opt-in): ``<script src="B/_session_suite/xd/s/TOKEN.js">``
tags on the hub's pages; works only where third-party cookies are allowed.
In that third-party request B's own ``SameSite=Lax`` cookie is not sent,
so B cannot tell whether it has a session: the script flow gives B the
hub's session whatever B had (its cookie is then ``SameSite=None``).
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from pyramid.httpexceptions import HTTPBadRequest, HTTPSeeOther
from pyramid.response import Response
from pyramid.view import view_config

from .. import _activity as activity
from .._request_cookies import readable_cookies
from ..events import SessionReplaced, TokenAccepted, TokenRejected
from ..redis._persist import watched
from ..redis.login_records import redis_key
from ..watch import notify, watchers_of
from . import CROSSDOMAIN_KEY
from .tokens import ReplayedToken, TokenError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pyramid.registry import Registry
    from pyramid.request import Request

    from . import CrossDomain

log = logging.getLogger(__name__)

STATE_COOKIE = 'session_suite_xd_state'
TRIED_COOKIE = 'session_suite_xd_tried'
NO_STORE = {'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer'}


def _crossdomain(request: Request) -> CrossDomain:
    crossdomain: CrossDomain = request.registry[CROSSDOMAIN_KEY]
    return crossdomain


def _query(request: Request) -> Mapping[str, str]:
    """The query parameters; none when the query string is not UTF-8
    (WebOb refuses to decode it)."""
    try:
        query: Mapping[str, str] = request.GET
        return query
    except UnicodeDecodeError:
        return {}


def _redirect(url: str) -> HTTPSeeOther:
    return HTTPSeeOther(location=url, headers=dict(NO_STORE))


def _start(
    request: Request, crossdomain: CrossDomain, next_url: str
) -> HTTPSeeOther:
    """Send the browser to the hub for a token, remembering a state."""
    state = secrets.token_urlsafe(24)
    here = request.host_url
    query = urlencode({'dst': here, 'state': state, 'next': next_url})
    response = _redirect(
        f'{crossdomain.hub}{crossdomain.prefix}/export?{query}'
    )
    secure = request.scheme == 'https'
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=crossdomain.codec.claim_ttl * 4,
        path=crossdomain.prefix + '/',
        secure=secure,
        httponly=True,
        samesite='Lax',
    )
    response.set_cookie(
        TRIED_COOKIE,
        '1',
        max_age=crossdomain.retry_after,
        path='/',
        secure=secure,
        httponly=True,
        samesite='Lax',
    )
    return response


def _forget(
    request: Request, response: Response, name: str, path: str
) -> None:
    """Delete a cookie of the flow, with the attributes it was set with."""
    secure = request.scheme == 'https'
    response.set_cookie(
        name, None, path=path, secure=secure, httponly=True, samesite='Lax'
    )


#: query parameter of a page the hub had no session for: not bounced again
TRIED_PARAM = 'session_suite_xd'


def _mark_tried(url: str) -> str:
    separator = '&' if '?' in url else '?'
    return f'{url}{separator}{TRIED_PARAM}=0'


def _keeps_cookies(request: Request) -> bool:
    """Whether the browser sent back the state cookie its flow began with:
    then it keeps the "tried" cookie too, and needs no marker in the URL."""
    return STATE_COOKIE in readable_cookies(request)


def _leave_cookie(cookie_name: str) -> Callable[[Request, Response], None]:
    """A response callback that takes back the deletion of ``cookie_name``
    (its session ended): the hop must not consume what the site's next page
    view will tell."""
    deletion = cookie_name + '=;'

    def leave_cookie(request: Request, response: Response) -> None:
        response.headerlist[:] = [
            (name, value)
            for name, value in response.headerlist
            if name.lower() != 'set-cookie' or not value.startswith(deletion)
        ]

    return leave_cookie


def pull_tween_factory(
    handler: Callable[[Request], Response], registry: Registry
) -> Callable[[Request], Response]:
    """Bounce a browser without a session to the hub, once."""
    crossdomain: CrossDomain | None = registry.get(CROSSDOMAIN_KEY)
    if crossdomain is None or 'redirect' not in crossdomain.flows:
        return handler
    cookie_name = crossdomain.factory.cookie_name
    prefix = crossdomain.prefix + '/'

    def pull_tween(request: Request) -> Response:
        cookies = readable_cookies(request)
        if (
            cookie_name in cookies
            or TRIED_COOKIE in cookies
            or request.method != 'GET'
            or request.host_url == crossdomain.hub
            or request.host_url not in crossdomain.sites
            or request.path_info.startswith(prefix)
            or request.is_xhr
            or request.headers.get('Sec-Fetch-Mode', 'navigate') != 'navigate'
            or not request.accept.acceptable_offers(['text/html'])
            or TRIED_PARAM in _query(request)
        ):
            return handler(request)
        return _start(request, crossdomain, request.path_qs)

    return pull_tween


@view_config(  # type: ignore[untyped-decorator]
    route_name='session_suite.crossdomain.begin', request_method='GET'
)
def begin(request: Request) -> HTTPSeeOther:
    """Push: get the hub's session here, then go to ``next``."""
    crossdomain = _crossdomain(request)
    next_url = crossdomain.safe_next(_query(request).get('next'))
    if 'push' not in crossdomain.flows or request.host_url == crossdomain.hub:
        return _redirect(next_url)
    return _start(request, crossdomain, next_url)


@view_config(  # type: ignore[untyped-decorator]
    route_name='session_suite.crossdomain.export', request_method='GET'
)
def export(request: Request) -> HTTPSeeOther:
    """On the hub: hand the session to ``dst`` (a site of the group)."""
    crossdomain = _crossdomain(request)
    dst = _query(request).get('dst', '')
    state = _query(request).get('state', '')
    if (
        dst not in crossdomain.sites
        or dst == request.host_url
        or request.host_url != crossdomain.hub
        or not 16 <= len(state) <= 64
    ):
        raise HTTPBadRequest('Not a site of this group.', headers=NO_STORE)
    next_url = _query(request).get('next', '/')
    query = {'next': next_url}
    session_id = _current_session_id(request, crossdomain)
    # registered once the session is loaded, so it runs after the
    # session's own callback
    request.add_response_callback(
        _leave_cookie(crossdomain.factory.cookie_name)
    )
    if session_id is None:
        query['none'] = '1'
    else:
        query['t'] = crossdomain.codec.mint(
            session_id, request.host_url, dst, state=state
        )
        activity.record(request.environ, 'crossdomain', 'token minted',
                        dst=dst)  # fmt: skip
    return _redirect(f'{dst}{crossdomain.prefix}/import?{urlencode(query)}')


def _current_session_id(
    request: Request, crossdomain: CrossDomain
) -> str | None:
    session = request.session_multi[crossdomain.namespace]
    state = session.__dict__.get('_session_state')
    if state is None or state.new or not state.managed_dict:
        return None
    session_id: str = state.session_id
    return session_id


@view_config(  # type: ignore[untyped-decorator]
    route_name='session_suite.crossdomain.import', request_method='GET'
)
def import_(request: Request) -> HTTPSeeOther:
    """On a destination: adopt the session a token hands over."""
    crossdomain = _crossdomain(request)
    next_url = crossdomain.safe_next(_query(request).get('next'))
    if _query(request).get('none') == '1':
        # a browser keeping no cookies is marked in the URL, so that it is
        # not sent again; one that does has the "tried" cookie for that
        if not _keeps_cookies(request):
            next_url = _mark_tried(next_url)
        response = _redirect(next_url)
        _forget(request, response, STATE_COOKIE, crossdomain.prefix + '/')
        return response
    try:
        payload = _redeem(
            request,
            crossdomain,
            _query(request).get('t'),
            state=readable_cookies(request).get(STATE_COOKIE),
            flow='redirect',
        )
    except TokenError as exc:
        raise HTTPBadRequest(
            f'This sign-in link cannot be used ({exc.reason}).',
            headers=dict(NO_STORE, **{'X-Session-Suite-Reason': exc.reason}),
        ) from None
    response = _redirect(next_url)
    _forget(request, response, STATE_COOKIE, crossdomain.prefix + '/')
    _forget(request, response, TRIED_COOKIE, '/')
    _adopt(request, response, crossdomain, payload, 'redirect')
    return response


@view_config(  # type: ignore[untyped-decorator]
    route_name='session_suite.crossdomain.script', request_method='GET'
)
def script(request: Request) -> Response:
    """Script loader: adopt the session from a third-party ``<script>``;
    needs HTTPS and a browser that allows third-party cookies."""
    crossdomain = _crossdomain(request)
    token = request.matchdict['token']
    try:
        if 'script' not in crossdomain.flows:
            raise TokenError('the script flow is off', 'flow-off')
        if request.scheme != 'https':
            raise TokenError('the script flow needs https', 'insecure')
        dest = request.headers.get('Sec-Fetch-Dest', 'script')
        if dest != 'script':
            raise TokenError(f'loaded as {dest}', 'not-a-script')
        payload = _redeem(request, crossdomain, token, flow='script',
                          referer=True)  # fmt: skip
    except TokenError as exc:
        if not getattr(exc, 'reported', False):
            _reject(request, exc, 'script')
        response = Response('', status=404)
        response.headers.update(NO_STORE)
        response.headers['X-Session-Suite-Reason'] = exc.reason
        response.content_type = 'text/javascript'
        return response
    response = Response('/* session shared */')
    response.headers.update(NO_STORE)
    response.content_type = 'text/javascript'
    _adopt(request, response, crossdomain, payload, 'script',
           samesite='None', secure=True)  # fmt: skip
    return response


#: KEYS claim session; ARGV holder ttl -> 1 claimed (now, or by this same
#: holder: a call the client sent again) | 0 claimed before (replayed) |
#: -1 the session is gone. Only a claim writes.
CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder then
  if holder == ARGV[1] then return 1 end
  return 0
end
local session = redis.call('GET', KEYS[2])
if not session or string.byte(session, 1) == 0 then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


def _redeem(
    request: Request,
    crossdomain: CrossDomain,
    token: str | None,
    flow: str,
    state: str | None = None,
    referer: bool = False,
) -> dict[str, Any]:
    here = request.host_url
    try:
        payload = crossdomain.codec.open(token, here, state=state, flow=flow)
        if referer:
            source = (request.referer or '').split('/')[:3]
            if '/'.join(source) != payload['src']:
                raise TokenError('not loaded by the source site', 'referer')
        claimed = _claim(request, crossdomain, payload)
        if claimed == 0:
            raise ReplayedToken('already used')
        if claimed == -1:
            raise TokenError('the session is gone', 'session-gone')
    except TokenError as exc:
        _reject(request, exc, flow)
        raise
    return payload


def _claim(
    request: Request, crossdomain: CrossDomain, payload: Mapping[str, Any]
) -> int:
    """Claim the token's id for this site: one round trip (the ``claim``
    operation of the watchers), nothing written for a refused token."""
    redis = crossdomain.factory.redis
    args = (
        CLAIM,
        2,
        crossdomain.codec.claim_key(payload, crossdomain.claim_prefix),
        redis_key(payload['sid']),
        f'{request.host_url} {secrets.token_urlsafe(12)}',
        crossdomain.codec.claim_ttl,
    )
    claimed: int = watched(
        watchers_of(request.registry),
        crossdomain.namespace,
        'claim',
        lambda: redis.eval(*args),
    )
    return claimed


def _reject(request: Request, exc: TokenError, flow: str) -> None:
    """Say, once, that a token was refused, and why."""
    exc.reported = True
    log.warning(
        'cross-domain token refused at %s: %s (%s)',
        request.host_url,
        exc.reason,
        exc,
    )
    activity.record(request.environ, 'crossdomain', 'token refused',
                    reason=exc.reason)  # fmt: skip
    notify(request, TokenRejected(request, exc.reason, flow))


def _adopt(
    request: Request,
    response: Response,
    crossdomain: CrossDomain,
    payload: Mapping[str, Any],
    flow: str,
    **cookie: Any,
) -> None:
    """Give this site the handed-over session, if it has none (or always
    with ``always_replace``)."""
    factory = crossdomain.factory
    mine = factory.peek(request)
    was_empty = not mine
    if not was_empty and not crossdomain.always_replace:
        activity.record(request.environ, 'crossdomain', 'token redeemed',
                        replaced=False)  # fmt: skip
        _accepted(request, crossdomain, payload, flow, 'kept')
        return
    factory.set_cookie(response, payload['sid'], **cookie)
    activity.record(request.environ, 'crossdomain', 'token redeemed',
                    replaced=True, src=payload['src'])  # fmt: skip
    notify(
        request,
        SessionReplaced(
            request,
            crossdomain.namespace,
            payload['src'],
            payload['dst'],
            was_empty,
        ),
    )
    outcome = 'adopted' if was_empty else 'replaced'
    _accepted(request, crossdomain, payload, flow, outcome)


def _accepted(
    request: Request,
    crossdomain: CrossDomain,
    payload: Mapping[str, Any],
    flow: str,
    outcome: str,
) -> None:
    """Say that a token was accepted, and what became of the site's
    session."""
    notify(
        request,
        TokenAccepted(
            request,
            crossdomain.namespace,
            payload['src'],
            payload['dst'],
            flow,
            outcome,
        ),
    )


def push_url(
    request: Request, next_url: str, sites: Sequence[str] | None = None
) -> str:
    """The URL that hands the hub's session to each of ``sites`` (by
    default every site of the group but the hub) in turn, by the push flow,
    then lands on ``next_url`` (a path is taken on this site).

    Redirect there after a login on the hub: every site then has the new
    session at its next page view, whatever it had (with
    ``always_replace``; else a site keeps a session of its own). A site
    that ``next_url`` already pushes to is left out. With the push flow
    off, ``next_url`` itself. Every site of the chain must be up: the
    browser goes through each.
    """
    crossdomain = _crossdomain(request)
    if next_url.startswith('/'):
        next_url = request.host_url + next_url
    if 'push' not in crossdomain.flows:
        return next_url
    if sites is None:
        sites = crossdomain.other_sites(crossdomain.hub)
    url = next_url
    for site in reversed(sites):
        begin = f'{site}{crossdomain.prefix}/begin'
        if site not in crossdomain.sites or next_url.startswith(begin + '?'):
            continue
        url = f'{begin}?{urlencode({"next": url})}'
    return url


def shared_session_loader(request: Request) -> str:
    """The ``<script>`` tags that share the current session with the other
    sites of the group (like ``{% shared_session_loader %}``); empty when
    there is no session or the script flow is off. The page is marked
    ``Cache-Control: private, no-store``: its tokens are for this browser.
    """
    crossdomain = _crossdomain(request)
    if (
        'script' not in crossdomain.flows
        or request.host_url != crossdomain.hub
    ):
        return ''
    session_id = _current_session_id(request, crossdomain)
    if session_id is None:
        return ''
    here = request.host_url

    def no_store(request: Request, response: Response) -> None:
        response.cache_control = 'private, no-store'

    request.add_response_callback(no_store)
    tags = []
    for site in crossdomain.other_sites(here):
        token = crossdomain.codec.mint(session_id, here, site, flow='script')
        url = f'{site}{crossdomain.prefix}/s/{token}.js'
        tags.append(f'<script src="{url}" async></script>')
    return '\n'.join(tags)
