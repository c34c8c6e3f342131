"""The "Your sessions" page and the administrators' page of the user index.

Included by ``pyramid_session_suite.user_index`` when
``session_suite.user_index.views = true``. With ``route_prefix`` (default
``/sessions``) and ``admin_permission`` (default ``session_suite.admin``):

================================= ====================================== ====
route                             pattern                                verb
================================= ====================================== ====
``session_suite.sessions``        ``{prefix}``                           GET
``session_suite.sessions.all``    ``{prefix}/revoke-all``                GET
``session_suite.sessions.revoke`` ``{prefix}/revoke``                    POST
``session_suite.admin.lookup``    ``{prefix}/users``                     GET
``session_suite.admin``           ``{prefix}/users/{userid}``            GET
``session_suite.admin.all``       ``{prefix}/users/{userid}/revoke-all`` GET
``session_suite.admin.revoke``    ``{prefix}/users/{userid}/revoke``     POST
================================= ====================================== ====

**Who may do what.** The user routes need a signed-in user
(``request.authenticated_userid``) and only ever touch that user's own
sessions, through ``request.user_sessions``: a handle that is not one of
them is ``404 Not Found`` and changes nothing. The admin routes need
``admin_permission`` (the application's security policy decides) and work
on any ``{userid}`` (which cannot contain ``/``); a user without sessions
has an empty table; ``{prefix}/users?userid=...`` finds a user's page. The
user routes have no ``permission`` of their own, so the application's
default permission, if it sets one, applies to them. A request that may
not is ``403 Forbidden``, anonymous or not (there is no authentication
challenge a ``401`` could name): in HTML, a page that says what to do
(sign in, at ``login_url``), in JSON Pyramid's own answer.

**Revoking.** A POST carries either ``handle`` (one session) or ``scope``:
``others`` (every session but this one) or ``all`` on the user route,
``all`` on the admin route. Anything else is ``400 Bad Request``. Fields
come from the form or, with ``Content-Type: application/json``, from a JSON
object. Every POST must carry the CSRF token of
:func:`pyramid.csrf.get_csrf_token`: the ``csrf_token`` form field (the
pages' forms have it) or the ``X-CSRF-Token`` header; without it, Pyramid
answers ``400 Bad Request`` before the view runs. ``scope=all`` from a page
needs a confirmation: the pages link to the ``revoke-all`` page, which asks
and posts ``confirm=yes``; an HTML POST of ``scope=all`` without it changes
nothing and is sent there (``303``). User revocations fire
``SessionRevoked`` with reason ``revoked``, the administrator's with
``admin``. Ending the current session (its own handle, ``scope=all``, or
an administrator revoking their own session) logs the browser out: the
answer carries the headers of :func:`pyramid.security.forget` and
redirects to the application's root rather than to a page that now
answers 403.

**HTML or JSON.** Each page has an HTML and a JSON variant, chosen by
Pyramid's ``accept`` view predicates and the application's accept view
order (by default ``text/html`` before ``application/json``): JSON when the
``Accept`` header prefers ``application/json`` by its quality (``Accept:
application/json``, ``application/*``, ``text/html;q=0.5,
application/json``), HTML on a tie (``*/*``, no header, ``application/json,
*/*``) or when it names neither. There are no ``.json`` URLs. A listing in
JSON is ``{"userid": ..., "current": handle or null, "sessions":
[entries]}`` with the :class:`~.index.SessionEntry` of each session (never
a session id; ``expires_in`` is the real deadline, see below); a POST
answers ``{"revoked": count}`` in JSON, or in HTML ``303 See Other`` back
to the listing, with a flash message in the ``session_suite`` queue of
``request.session`` (when the application has a session factory and the
browser is still signed in), shown by the listing page.

**The pages** are Chameleon templates, rendered by Pyramid renderers:
``pyramid_session_suite:templates/`` ``sessions.pt`` (the user's page),
``admin.pt`` (a user's sessions, for administrators), ``lookup.pt`` (find
a user), ``confirm.pt`` (the confirmation of ``scope=all``),
``forbidden.pt`` (sign in, or administrators only), ``parts.pt`` (the
table of sessions, macro ``sessions_table``) and ``layout.pt`` (macro
``layout``: the document, its style, the back link; slots ``head`` and
``content``). An application replaces any of them with
``config.override_asset``, or its layout with the ``layout`` setting.
``page_title``, ``app_name``, ``back_url`` and ``login_url`` say what the
pages call themselves and where they lead.

**Expires.** A session ends at the earliest of its key's TTL and, with
``pyramid_session_suite.policy``, its ``absolute_timeout`` (from its login)
and ``idle_timeout`` (from its last recorded activity; not for a
remembered login): the pages and the JSON say that deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
import datetime
import re
import time
from typing import TYPE_CHECKING, Any, TypeAlias
from pyramid.csrf import get_csrf_token
from pyramid.exceptions import ConfigurationError
from pyramid.httpexceptions import (
    HTTPBadRequest,
    HTTPForbidden,
    HTTPNotFound,
    HTTPSeeOther,
)
from pyramid.interfaces import ISessionFactory
from pyramid.renderers import get_renderer
from pyramid.security import forget

from .._settings import parse_settings
from ..interfaces import IUserIndex
from . import SETTINGS_PREFIX, USER_INDEX_SETTINGS

if TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.request import Request
    from pyramid.response import Response

    from . import SessionTracker, UserSessions
    from .store import SessionEntry

    #: what a view returns: a response, or the values of its renderer
    _Answer: TypeAlias = Response | dict[str, Any]

USER_ROUTE = 'session_suite.sessions'
USER_CONFIRM_ROUTE = 'session_suite.sessions.all'
USER_REVOKE_ROUTE = 'session_suite.sessions.revoke'
ADMIN_LOOKUP_ROUTE = 'session_suite.admin.lookup'
ADMIN_ROUTE = 'session_suite.admin'
ADMIN_CONFIRM_ROUTE = 'session_suite.admin.all'
ADMIN_REVOKE_ROUTE = 'session_suite.admin.revoke'

DEFAULT_PREFIX = '/sessions'
DEFAULT_PERMISSION = 'session_suite.admin'

#: the package's templates (asset specs: override them)
TEMPLATES = 'pyramid_session_suite:templates/'

#: the settings of the pages (rows of the user index's table)
PAGE_SETTINGS = (
    'route_prefix',
    'admin_permission',
    'page_title',
    'app_name',
    'back_url',
    'login_url',
    'layout',
)

#: registry key of the pages' :class:`Pages`
PAGES_KEY = 'session_suite.user_index.pages'

#: the flash queue of the pages' messages
FLASH_QUEUE = 'session_suite'

#: the field that confirms ``scope=all`` from a page
CONFIRM_FIELD = 'confirm'

#: what a handle looks like (see :meth:`.index.UserIndex.handle`): a
#: slot and a digest, or an HMAC (sessions of earlier releases)
HANDLE = re.compile(
    r'(?:0|[A-Za-z0-9_-]{8})\.[0-9a-f]{8}'  # slot.digest
    r'|[A-Za-z0-9_-]{22}'  # HMAC of an earlier release's session id
)

#: what WebOb raises for a body it cannot read as a form: a multipart body
#: without a boundary, a charset other than UTF-8 (``DeprecationWarning``)
UNREADABLE_FORM = (ValueError, LookupError, DeprecationWarning)

#: headers of every listing: personal data, negotiated on ``Accept``
LISTING_HEADERS = {
    'Cache-Control': 'no-store',
    'Vary': 'Accept',
    'X-Content-Type-Options': 'nosniff',
}

#: headers of every HTML page: never framed
PAGE_HEADERS = {
    **LISTING_HEADERS,
    'X-Frame-Options': 'DENY',
    'Content-Security-Policy': "frame-ancestors 'none'",
}

HTML = 'text/html'
JSON = 'application/json'


class Pages:
    """What the pages call themselves and where they lead, from the
    settings."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.permission: str = (
            settings['admin_permission'] or DEFAULT_PERMISSION
        )
        self.title: str = settings['page_title'] or 'Your sessions'
        self.app_name: str | None = settings['app_name']
        self.back_url: str | None = settings['back_url']
        self.login_url: str | None = settings['login_url']
        self.layout: str = settings['layout'] or TEMPLATES + 'layout.pt'


def includeme(config: Configurator) -> None:
    config.include('pyramid_chameleon')
    registry = config.registry
    table = [row for row in USER_INDEX_SETTINGS if row[0] in PAGE_SETTINGS]
    # the user index wrote its parsed values back: None is a default
    given = {k: v for k, v in registry.settings.items() if v is not None}
    settings = parse_settings(given, table, SETTINGS_PREFIX)
    registry[PAGES_KEY] = pages = Pages(settings)
    prefix = (settings['route_prefix'] or DEFAULT_PREFIX).strip('/')
    prefix = '/' + prefix if prefix else ''
    admin: dict[str, Any] = {'permission': pages.permission}

    config.add_route(USER_ROUTE, prefix or '/')
    config.add_route(USER_CONFIRM_ROUTE, prefix + '/revoke-all')
    config.add_route(USER_REVOKE_ROUTE, prefix + '/revoke')
    config.add_route(ADMIN_LOOKUP_ROUTE, prefix + '/users')
    config.add_route(ADMIN_ROUTE, prefix + '/users/{userid}')
    config.add_route(
        ADMIN_CONFIRM_ROUTE, prefix + '/users/{userid}/revoke-all'
    )
    config.add_route(ADMIN_REVOKE_ROUTE, prefix + '/users/{userid}/revoke')

    post: dict[str, Any] = {'request_method': 'POST', 'require_csrf': True}
    add_page(config, USER_ROUTE, 'sessions.pt', my_sessions, my_sessions_json)
    add_page(config, USER_CONFIRM_ROUTE, 'confirm.pt', confirm_mine)
    add_variants(
        config, USER_REVOKE_ROUTE, revoke_mine, revoke_mine_json, **post
    )
    add_page(config, ADMIN_LOOKUP_ROUTE, 'lookup.pt', lookup_user, **admin)
    add_page(
        config,
        ADMIN_ROUTE,
        'admin.pt',
        user_sessions,
        user_sessions_json,
        **admin,
    )
    add_page(config, ADMIN_CONFIRM_ROUTE, 'confirm.pt', confirm_users, **admin)
    add_variants(
        config,
        ADMIN_REVOKE_ROUTE,
        revoke_users,
        revoke_users_json,
        **post,
        **admin,
    )

    for route_name in ROUTES:
        # a page that says what to do rather than Pyramid's bare 403; JSON
        # clients get Pyramid's own answer
        config.add_forbidden_view(
            forbidden,
            route_name=route_name,
            accept=HTML,
            renderer=TEMPLATES + 'forbidden.pt',
        )
    # Pyramid's CSRF check reads the form before the view does: a form that
    # cannot be read is a 400 there too, not a 500
    for route_name in (USER_REVOKE_ROUTE, ADMIN_REVOKE_ROUTE):
        for error in UNREADABLE_FORM:
            config.add_exception_view(
                unreadable_form, context=error, route_name=route_name
            )

    def check() -> None:
        if registry.queryUtility(IUserIndex) is None:
            raise ConfigurationError(
                'pyramid_session_suite.user_index.views needs the user '
                'index: include pyramid_session_suite.user_index and set '
                f'{SETTINGS_PREFIX}views = true'
            )

    # after the user index registers its utility (order 1)
    config.action(None, check, order=5)


ROUTES = (
    USER_ROUTE,
    USER_CONFIRM_ROUTE,
    USER_REVOKE_ROUTE,
    ADMIN_LOOKUP_ROUTE,
    ADMIN_ROUTE,
    ADMIN_CONFIRM_ROUTE,
    ADMIN_REVOKE_ROUTE,
)


def add_page(
    config: Configurator,
    route_name: str,
    template: str,
    view: Callable[[Request], _Answer],
    json_view: Callable[[Request], _Answer] | None = None,
    **kw: Any,
) -> None:
    """A GET page from ``template``, and its JSON variant."""
    add_variants(
        config,
        route_name,
        view,
        json_view,
        renderer=TEMPLATES + template,
        request_method='GET',
        **kw,
    )


def add_variants(
    config: Configurator,
    route_name: str,
    view: Callable[[Request], _Answer],
    json_view: Callable[[Request], _Answer] | None = None,
    renderer: str | None = None,
    **kw: Any,
) -> None:
    """``view`` for HTML and, when the client prefers it, ``json_view``
    for JSON. The HTML variant is also the one for a client that accepts
    neither."""
    for accept in (HTML, None):
        config.add_view(
            view, route_name=route_name, accept=accept, renderer=renderer, **kw
        )
    if json_view is not None:
        config.add_view(
            json_view,
            route_name=route_name,
            accept=JSON,
            renderer='json',
            **kw,
        )


# -- the views -----------------------------------------------------------


def my_sessions(request: Request) -> dict[str, Any]:
    """GET ``{prefix}``: the signed-in user's sessions."""
    sessions = signed_in(request)
    userid = listed_userid(request, sessions)
    entries = sessions.list()
    pages = pages_of(request)
    admin = request.has_permission(pages.permission)
    return page(
        request,
        pages.title,
        userid=userid,
        caption=plural(len(entries), 'active session'),
        rows=rows_of(request, entries, USER_REVOKE_ROUTE, {}),
        flashes=pop_flashes(request),
        others_form=form(request, USER_REVOKE_ROUTE, {}, scope='others'),
        confirm_url=request.route_path(USER_CONFIRM_ROUTE),
        admin_url=request.route_path(ADMIN_LOOKUP_ROUTE) if admin else None,
        lookup_url=request.route_path(ADMIN_LOOKUP_ROUTE),
        lookup_value=None,
    )


def my_sessions_json(request: Request) -> dict[str, Any]:
    sessions = signed_in(request)
    userid = listed_userid(request, sessions)
    return listing_json(request, userid, sessions.current, sessions.list())


def confirm_mine(request: Request) -> dict[str, Any]:
    """GET ``{prefix}/revoke-all``: "sign out everywhere?"."""
    sessions = signed_in(request)
    count = len(sessions.list())
    return page(
        request,
        'Sign out everywhere?',
        question=(
            f'This signs out {all_of(count, "session")} of your account, '
            'on every browser and device, this one included. You will '
            'need to sign in again.'
        ),
        count=count,
        form=form(
            request,
            USER_REVOKE_ROUTE,
            {},
            scope='all',
            **{CONFIRM_FIELD: 'yes'},
        ),
        button='Sign out everywhere',
        cancel_url=request.route_path(USER_ROUTE),
    )


def revoke_mine(request: Request) -> _Answer:
    """POST ``{prefix}/revoke``: end one, the other or all of the signed-in
    user's sessions; back to the listing, with a message."""
    return end_mine(request, html=True)


def revoke_mine_json(request: Request) -> _Answer:
    """POST ``{prefix}/revoke`` asking for JSON: ``{"revoked": count}``."""
    return end_mine(request, html=False)


def end_mine(request: Request, html: bool) -> _Answer:
    sessions = signed_in(request)
    handle, scope = revocation_target(request, ('others', 'all'))
    if html and scope == 'all' and not confirmed(request):
        return HTTPSeeOther(request.route_url(USER_CONFIRM_ROUTE))
    current = sessions.current
    if handle is not None:
        if not listed(sessions.list(), handle):
            raise HTTPNotFound('No such session.')
        count = sessions.revoke(handle)
        if not count:  # ended meanwhile
            raise HTTPNotFound('No such session.')
        message = 'Signed out 1 session.'
    elif scope == 'others':
        count = sessions.revoke_others()
        message = f'Signed out {plural(count, "other session")}.'
    else:
        count = sessions.revoke_all()
        message = f'Signed out {plural(count, "session")}.'
    ended = current is not None and sessions.current is None
    if not html:
        return revoked_json(request, count, ended)
    return revoked(request, ended, USER_ROUTE, {}, message)


def lookup_user(request: Request) -> _Answer:
    """GET ``{prefix}/users``: find a user's page (admin)."""
    try:
        userid = (request.GET.get('userid') or '').strip()
    except UnicodeDecodeError:
        raise HTTPBadRequest('The query is not UTF-8.') from None
    if userid and '/' not in userid:
        return HTTPSeeOther(request.route_url(ADMIN_ROUTE, userid=userid))
    return page(
        request,
        'Sessions of a user',
        error='A user id cannot contain "/".' if userid else None,
        lookup_url=request.route_path(ADMIN_LOOKUP_ROUTE),
        lookup_value=userid or None,
        sessions_url=request.route_path(USER_ROUTE),
    )


def user_sessions(request: Request) -> dict[str, Any]:
    """GET ``{prefix}/users/{userid}``: any user's sessions (admin)."""
    userid, current, entries = admin_listing(request)
    route_kw = {'userid': userid}
    return page(
        request,
        f'Sessions of {userid}',
        userid=userid,
        caption=plural(len(entries), 'active session'),
        rows=rows_of(request, entries, ADMIN_REVOKE_ROUTE, route_kw),
        flashes=pop_flashes(request),
        confirm_url=request.route_path(ADMIN_CONFIRM_ROUTE, **route_kw),
        lookup_url=request.route_path(ADMIN_LOOKUP_ROUTE),
        lookup_value=None,
        sessions_url=request.route_path(USER_ROUTE),
    )


def user_sessions_json(request: Request) -> dict[str, Any]:
    return listing_json(request, *admin_listing(request))


def confirm_users(request: Request) -> dict[str, Any]:
    """GET ``{prefix}/users/{userid}/revoke-all``: "revoke all?"
    (admin)."""
    userid, current, entries = admin_listing(request)
    count = len(entries)
    question = (
        f'This ends {all_of(count, "session")} of {userid}, on every '
        'browser and device.'
    )
    if current is not None:
        question += ' Yours is one of them: you will be signed out.'
    route_kw = {'userid': userid}
    return page(
        request,
        f'Revoke all sessions of {userid}?',
        question=question,
        count=count,
        form=form(
            request,
            ADMIN_REVOKE_ROUTE,
            route_kw,
            scope='all',
            **{CONFIRM_FIELD: 'yes'},
        ),
        button='Revoke all sessions',
        cancel_url=request.route_path(ADMIN_ROUTE, **route_kw),
    )


def revoke_users(request: Request) -> _Answer:
    """POST ``{prefix}/users/{userid}/revoke``: end one or all sessions of
    any user (admin); events say ``reason='admin'``."""
    return end_users(request, html=True)


def revoke_users_json(request: Request) -> _Answer:
    return end_users(request, html=False)


def end_users(request: Request, html: bool) -> _Answer:
    userid = request.matchdict['userid']
    route_kw = {'userid': userid}
    tracker = request.registry.getUtility(IUserIndex)
    handle, _ = revocation_target(request, ('all',))
    if html and handle is None and not confirmed(request):
        url = request.route_url(ADMIN_CONFIRM_ROUTE, **route_kw)
        return HTTPSeeOther(url)
    current = own_handle(request, userid)
    if handle is not None:
        if not listed(tracker.index.list(userid), handle):
            raise HTTPNotFound('No such session.')
        count = tracker.revoke(request, userid, [handle], reason='admin')
        if not count:
            raise HTTPNotFound('No such session.')
    else:
        count = tracker.revoke_all(request, userid, reason='admin')
    ended = current is not None and handle in (None, current)
    if ended:
        # the administrator revoked their own session: sign out here too
        request.user_sessions._end_current()
    if not html:
        return revoked_json(request, count, ended)
    message = f'Revoked {plural(count, "session")} of {userid}.'
    return revoked(request, ended, ADMIN_ROUTE, route_kw, message)


def forbidden(exc: Exception, request: Request) -> dict[str, Any]:
    """The 403 of the pages: sign in, or this is for administrators."""
    request.response.status_int = 403
    userid = request.authenticated_userid
    route = request.matched_route
    admin_page = route is not None and route.name.startswith(ADMIN_ROUTE)
    if userid is None:
        return page(
            request,
            'Sign in' if admin_page else 'Sign in to see your sessions',
            anonymous=True,
            message=(
                'This page is for administrators: sign in first.'
                if admin_page
                else 'This page lists the browsers and devices signed in '
                'to your account, and lets you sign them out. Sign in '
                'first.'
            ),
            login_url=login_url(request),
        )
    return page(
        request,
        'Administrators only' if admin_page else 'Not allowed',
        anonymous=False,
        userid=userid,
        message=(
            "Only administrators can see other users' sessions."
            if admin_page  # else the application's default permission
            else 'Your account may not use this page.'
        ),
        sessions_url=request.route_path(USER_ROUTE),
    )


# -- helpers of the views ------------------------------------------------


def pages_of(request: Request) -> Pages:
    pages: Pages | None = request.registry.get(PAGES_KEY)
    return pages if pages is not None else Pages(dict.fromkeys(PAGE_SETTINGS))


def signed_in(request: Request) -> UserSessions:
    """``request.user_sessions``, or 403 for an anonymous request."""
    if request.authenticated_userid is None:
        raise HTTPForbidden('Sign in to see your sessions.')
    sessions: UserSessions = request.user_sessions
    return sessions


def listed_userid(request: Request, sessions: UserSessions) -> Any:
    userid = sessions.userid
    if userid is None:  # signed in, but the session is not indexed (yet)
        userid = request.authenticated_userid
    return userid


def admin_listing(
    request: Request,
) -> tuple[str, str | None, list[SessionEntry]]:
    """``(userid, current, entries)`` of the admin routes' user."""
    userid: str = request.matchdict['userid']
    tracker: SessionTracker = request.registry.getUtility(IUserIndex)
    current = own_handle(request, userid)
    return userid, current, tracker.index.list(userid, current=current)


def listed(entries: Iterable[SessionEntry], handle: str) -> bool:
    return any(entry.handle == handle for entry in entries)


def own_handle(request: Request, userid: Any) -> str | None:
    """The handle of this request's session if it is one of ``userid``'s."""
    mine: UserSessions = request.user_sessions
    if mine.userid is not None and str(mine.userid) == str(userid):
        return mine.current
    return None


def confirmed(request: Request) -> bool:
    """Whether a POST of ``scope=all`` says it was confirmed."""
    value = request_fields(request).get(CONFIRM_FIELD)
    return isinstance(value, str) and bool(value.strip())


def revocation_target(
    request: Request, scopes: Sequence[str]
) -> tuple[str | None, str | None]:
    """``(handle, None)`` or ``(None, scope)`` from the request's fields;
    400 for anything else, 404 for a malformed handle."""
    fields = request_fields(request)
    handle = fields.get('handle') or None
    scope = fields.get('scope') or None
    if handle is not None and scope is not None:
        raise HTTPBadRequest('Give a handle or a scope, not both.')
    if handle is not None:
        if not isinstance(handle, str) or not HANDLE.fullmatch(handle):
            raise HTTPNotFound('No such session.')
        return handle, None
    if scope in scopes:
        return None, scope
    choices = ', '.join(scopes)
    raise HTTPBadRequest(f'Give a session handle or a scope ({choices}).')


def request_fields(request: Request) -> Mapping[str, Any]:
    """The POST's form fields, or its JSON object."""
    fields: Mapping[str, Any]
    if request.content_type == 'application/json':
        try:
            fields = request.json_body
        except (ValueError, LookupError, RecursionError):
            # not JSON, an unknown charset, or nested too deep
            raise HTTPBadRequest('The body is not valid JSON.') from None
        if not isinstance(fields, dict):
            raise HTTPBadRequest('The body must be a JSON object.')
        return fields
    try:
        fields = request.POST
    except UNREADABLE_FORM:
        raise HTTPBadRequest('The form cannot be read.') from None
    return fields


def unreadable_form(exc: Exception, request: Request) -> Response:
    """400 for a POST whose body cannot be read as a form; any other
    error goes on."""
    try:
        request_fields(request)
    except HTTPBadRequest as unreadable:
        return unreadable
    raise exc


def revoked_json(request: Request, count: int, ended: bool) -> dict[str, int]:
    """``{"revoked": count}``, signing this browser out if its session
    ended."""
    response = request.response
    if ended:
        response.headerlist.extend(forget(request))
    response.headers['Cache-Control'] = 'no-store'
    return {'revoked': count}


def revoked(
    request: Request,
    ended: bool,
    route_name: str,
    route_kw: Mapping[str, Any],
    message: str,
) -> Response:
    """A redirect to the listing (to the application's root if this
    session ended)."""
    if ended:
        return HTTPSeeOther(
            request.application_url + '/', headers=forget(request)
        )
    flash(request, message)
    return HTTPSeeOther(request.route_url(route_name, **route_kw))


def listing_json(
    request: Request,
    userid: Any,
    current: str | None,
    entries: list[SessionEntry],
) -> dict[str, Any]:
    request.response.headers.update(LISTING_HEADERS)
    now = time.time()
    for entry in entries:
        entry['expires_in'] = expires_in(request, entry, now)
    return {'userid': userid, 'current': current, 'sessions': entries}


def has_session(request: Request) -> bool:
    return request.registry.queryUtility(ISessionFactory) is not None


def flash(request: Request, message: str) -> None:
    if has_session(request):
        request.session.flash(message, queue=FLASH_QUEUE)


def pop_flashes(request: Request) -> list[Any]:
    if not has_session(request):
        return []
    session = request.session
    if not session.peek_flash(FLASH_QUEUE):  # no write when there is none
        return []
    flashes: list[Any] = session.pop_flash(FLASH_QUEUE)
    return flashes


def plural(count: int, noun: str) -> str:
    return f'{count} {noun}' if count == 1 else f'{count} {noun}s'


def all_of(count: int, noun: str) -> str:
    """``'the 1 session'``, ``'all 3 sessions'``."""
    which = 'the' if count == 1 else 'all'
    return f'{which} {plural(count, noun)}'


# -- what the templates get ------------------------------------------------


class Values(dict[str, Any]):
    """A dict whose keys read as attributes (``None`` when missing), as
    templates like them."""

    __getattr__ = dict.get


def page(request: Request, title: str, **values: Any) -> dict[str, Any]:
    """The values of a page's template: ``title``, ``page`` (what every
    page shows: ``app_name``, ``back_url``, ``back_text``), ``layout`` (the
    template of the ``layout`` macro), ``parts`` (the template of the
    shared macros), and ``values``; the response gets the pages'
    headers."""
    pages = pages_of(request)
    request.response.headers.update(PAGE_HEADERS)
    back_text = f'Back to {pages.app_name or "the site"}'
    values.setdefault('flashes', [])
    return {
        'title': title,
        'page': Values(
            title=title,
            app_name=pages.app_name,
            back_url=site_url(request, pages.back_url)
            or (request.application_url + '/'),
            back_text=back_text,
        ),
        'layout': template(pages.layout),
        'parts': template(TEMPLATES + 'parts.pt'),
        **values,
    }


def template(spec: str) -> Any:
    """The Chameleon template of an asset spec (for its macros)."""
    return get_renderer(spec).implementation()


def site_url(request: Request, url: str | None) -> str | None:
    """``url`` as a link: an absolute URL as it is, a path under the
    application's root."""
    if not url:
        return None
    if re.match(r'[a-z][a-z0-9+.-]*:', url, re.I) or url.startswith('//'):
        return url
    root: str = request.application_url
    return root + '/' + url.lstrip('/')


def login_url(request: Request) -> str | None:
    """Where to sign in: the ``login_url`` setting, or the policy's
    ``login_route``, or ``None``."""
    url = site_url(request, pages_of(request).login_url)
    if url is not None:
        return url
    tracker = request.registry.queryUtility(IUserIndex)
    route = getattr(getattr(tracker, 'policy', None), 'login_route', None)
    if route:
        try:
            found: str = request.route_url(route)
        except KeyError:  # no such route
            return None
        return found
    return None


def form(
    request: Request,
    route_name: str,
    route_kw: Mapping[str, Any],
    **fields: Any,
) -> Values:
    """A POST form to ``route_name``: its ``action`` and hidden
    ``fields``, the CSRF token first."""
    return Values(
        action=request.route_path(route_name, **route_kw),
        fields=[('csrf_token', get_csrf_token(request)), *fields.items()],
    )


def rows_of(
    request: Request,
    entries: Iterable[SessionEntry],
    revoke_route: str,
    route_kw: Mapping[str, Any],
    now: float | None = None,
) -> list[Values]:
    """The rows of the sessions table: each ``entry``, how to show it, and
    its revoke form."""
    now = time.time() if now is None else now
    rows = []
    for entry in entries:
        label = entry.label or 'Unknown device'
        left, kind = deadline(request, entry, now)
        rows.append(
            Values(
                entry=entry,
                label=label,
                ua=entry.ua,
                mobile=entry.mobile,
                current=entry.current,
                location=entry.location or 'Unknown',
                located=bool(entry.location),
                ip=entry.ip or '—',
                created=when(entry.created, ago(now - (entry.created or 0))),
                last_seen=when(
                    entry.last_seen, ago(now - (entry.last_seen or 0))
                ),
                expires=(
                    None
                    if left is None
                    else when(now + left, 'in ' + countdown(left))
                ),
                firm=kind == 'absolute',
                form=form(
                    request, revoke_route, route_kw, handle=entry.handle
                ),
                revoke_label=(
                    f'Revoke {label}'
                    + (' (this device)' if entry.current else '')
                ),
            )
        )
    return rows


def when(epoch: float | None, text: str) -> Values:
    """``text`` and the ISO date and time of ``epoch``, for a ``<time>``
    element."""
    iso = datetime.datetime.fromtimestamp(
        epoch or 0, tz=datetime.timezone.utc
    ).isoformat(timespec='seconds')
    return Values(iso=iso, text=text)


# -- deadlines -------------------------------------------------------------


def deadlines(
    request: Request, entry: SessionEntry, now: float
) -> dict[str, float]:
    """``{kind: seconds left}`` of ``entry``: ``ttl`` (its key's), and
    with the policy ``absolute`` and ``idle``."""
    found: dict[str, float] = {}
    if entry.expires_in is not None:
        found['ttl'] = entry.expires_in
    tracker = request.registry.queryUtility(IUserIndex)
    policy = getattr(tracker, 'policy', None)
    if policy is None:
        return found
    if policy.absolute_timeout and entry.created:
        found['absolute'] = entry.created + policy.absolute_timeout - now
    if (
        policy.idle_timeout
        and entry.last_seen
        and not remembered(tracker, entry)
    ):
        found['idle'] = entry.last_seen + policy.idle_timeout - now
    return found


def deadline(
    request: Request, entry: SessionEntry, now: float
) -> tuple[float, str] | tuple[None, None]:
    """``(seconds left, kind)`` of ``entry``'s earliest deadline (of its
    key's TTL and the policy's), or ``(None, None)``."""
    found = deadlines(request, entry, now)
    if not found:
        return None, None
    kind = min(found, key=found.__getitem__)
    return max(0, found[kind]), kind


def expires_in(
    request: Request, entry: SessionEntry, now: float
) -> float | None:
    """The seconds ``entry`` has left (``None``: no deadline)."""
    return deadline(request, entry, now)[0]


def remembered(tracker: SessionTracker, entry: SessionEntry) -> bool:
    """Whether ``entry`` is a remembered login, which the idle timeout
    spares: its key lives longer than the namespace's ``timeout`` can
    make it."""
    factory = tracker.factory
    if not getattr(factory, 'remember_max_age', None):
        return False
    if entry.expires_in is None:
        return False
    timeout = factory.timeout
    return timeout is None or entry.expires_in > timeout + 1


# -- wording -----------------------------------------------------------------

UNITS = (
    (365 * 86400, 'year'),
    (30 * 86400, 'month'),
    (7 * 86400, 'week'),
    (86400, 'day'),
    (3600, 'hour'),
    (60, 'minute'),
)


def duration(seconds: float) -> str:
    """``'2 minutes'``, ``'1 hour'``, ``'less than a minute'``: the
    largest whole unit."""
    seconds = max(0, seconds)
    for size, unit in UNITS:
        if seconds >= size:
            return plural(int(seconds // size), unit)
    return 'less than a minute'


def countdown(seconds: float) -> str:
    """What :func:`duration` says, with the minutes of a deadline hours
    away: ``'1 hour 59 minutes'``."""
    seconds = max(0, seconds)
    if not 3600 <= seconds < 86400:
        return duration(seconds)
    hours, minutes = divmod(int(seconds) // 60, 60)
    text = plural(hours, 'hour')
    return f'{text} {plural(minutes, "minute")}' if minutes else text


def ago(seconds: float) -> str:
    """``'just now'`` or ``'2 minutes ago'``."""
    if seconds < 60:
        return 'just now'
    return duration(seconds) + ' ago'
