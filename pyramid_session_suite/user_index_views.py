"""The "Your sessions" page and the administrators' page of the user index.

Included by ``pyramid_session_suite.user_index`` when
``session_suite.user_index.views = true``. With ``route_prefix`` (default
``/sessions``) and ``admin_permission`` (default ``session_suite.admin``):

===================================== ==================================== ====
route                                 pattern                              verb
===================================== ==================================== ====
``session_suite.sessions``            ``{prefix}``                         GET
``session_suite.sessions.revoke``     ``{prefix}/revoke``                  POST
``session_suite.admin``               ``{prefix}/users/{userid}``          GET
``session_suite.admin.revoke``        ``{prefix}/users/{userid}/revoke``   POST
===================================== ==================================== ====

**Who may do what.** The first two need a signed-in user
(``request.authenticated_userid``; anonymous requests get ``403
Forbidden``) and only ever touch that user's own sessions, through
``request.user_sessions``: a handle that is not one of them is ``404 Not
Found`` and changes nothing. The admin routes need ``admin_permission``
(the application's security policy decides; denied is 403) and work on any
``{userid}`` (which cannot contain ``/``); a user without sessions has an
empty table. The user routes have no ``permission`` of their own, so the
application's default permission, if it sets one, applies to them.

**Revoking.** A POST carries either ``handle`` (one session) or ``scope``:
``others`` (every session but this one) or ``all`` on the user route,
``all`` on the admin route. Anything else is ``400 Bad Request``. Fields
come from the form or, with ``Content-Type: application/json``, from a JSON
object. Every POST must carry the CSRF token of
:func:`pyramid.csrf.get_csrf_token`: the ``csrf_token`` form field (the
pages' forms have it) or the ``X-CSRF-Token`` header; without it, Pyramid
answers ``400 Bad Request`` before the view runs. User revocations fire
``SessionRevoked`` with reason ``revoked``, the administrator's with
``admin``. Ending the current session (its own handle, ``scope=all``, or
an administrator revoking their own session) logs the browser out: the
answer carries the headers of :func:`pyramid.security.forget` and
redirects to the application's root rather than to a page that now
answers 403.

**HTML or JSON.** HTML unless the ``Accept`` header prefers
``application/json`` to ``text/html``: a higher quality, or the same
quality with ``application/json`` named more specifically (so
``Accept: application/json, */*`` is JSON, ``*/*`` or no header is HTML).
There are no ``.json`` URLs. A listing in JSON is ``{"userid": ...,
"current": handle or null, "sessions": [entries]}`` with the
:class:`~.index.SessionEntry` of each session (never a session id); a POST
answers ``{"revoked": count}`` in JSON, or in HTML ``303 See Other`` back
to the listing, with a flash message in the ``session_suite`` queue of
``request.session`` (when the application has a session factory and the
browser is still signed in), shown by the listing page.
"""

import datetime
from html import escape
import re
import time
from pyramid.csrf import get_csrf_token
from pyramid.exceptions import ConfigurationError
from pyramid.httpexceptions import (
    HTTPBadRequest,
    HTTPForbidden,
    HTTPNotFound,
    HTTPSeeOther,
)
from pyramid.interfaces import ISessionFactory
from pyramid.response import Response
from pyramid.security import forget

from .interfaces import IUserIndex
from .user_index import SETTINGS_PREFIX

USER_ROUTE = 'session_suite.sessions'
USER_REVOKE_ROUTE = 'session_suite.sessions.revoke'
ADMIN_ROUTE = 'session_suite.admin'
ADMIN_REVOKE_ROUTE = 'session_suite.admin.revoke'

DEFAULT_PREFIX = '/sessions'
DEFAULT_PERMISSION = 'session_suite.admin'

#: the flash queue of the pages' messages
FLASH_QUEUE = 'session_suite'

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


def includeme(config):
    settings = config.registry.settings
    prefix = settings.get(SETTINGS_PREFIX + 'route_prefix') or DEFAULT_PREFIX
    prefix = '/' + prefix.strip('/') if prefix.strip('/') else ''
    permission = (
        settings.get(SETTINGS_PREFIX + 'admin_permission')
        or DEFAULT_PERMISSION
    )
    config.add_route(USER_ROUTE, prefix or '/')
    config.add_route(USER_REVOKE_ROUTE, prefix + '/revoke')
    config.add_route(ADMIN_ROUTE, prefix + '/users/{userid}')
    config.add_route(ADMIN_REVOKE_ROUTE, prefix + '/users/{userid}/revoke')
    config.add_view(my_sessions, route_name=USER_ROUTE, request_method='GET')
    config.add_view(
        revoke_mine,
        route_name=USER_REVOKE_ROUTE,
        request_method='POST',
        require_csrf=True,
    )
    config.add_view(
        user_sessions,
        route_name=ADMIN_ROUTE,
        request_method='GET',
        permission=permission,
    )
    config.add_view(
        revoke_users,
        route_name=ADMIN_REVOKE_ROUTE,
        request_method='POST',
        permission=permission,
        require_csrf=True,
    )
    # Pyramid's CSRF check reads the form before the view does: a form that
    # cannot be read is a 400 there too, not a 500
    for route_name in (USER_REVOKE_ROUTE, ADMIN_REVOKE_ROUTE):
        for error in UNREADABLE_FORM:
            config.add_exception_view(
                unreadable_form, context=error, route_name=route_name
            )
    registry = config.registry

    def check():
        if registry.queryUtility(IUserIndex) is None:
            raise ConfigurationError(
                'pyramid_session_suite.user_index_views needs the user '
                'index: include pyramid_session_suite.user_index and set '
                f'{SETTINGS_PREFIX}views = true'
            )

    # after the user index registers its utility (order 1)
    config.action(None, check, order=5)


# -- the views -----------------------------------------------------------


def my_sessions(request):
    """GET ``{prefix}``: the signed-in user's sessions."""
    sessions = signed_in(request)
    entries = sessions.list()
    userid = sessions.userid
    if userid is None:  # signed in, but the session is not indexed (yet)
        userid = request.authenticated_userid
    if wants_json(request):
        return listing_json(userid, sessions.current, entries)
    body = page(
        request,
        'Your sessions',
        intro=(
            f'<p>Signed in as <strong>{e(userid)}</strong>. These browsers '
            'and devices are signed in to your account; revoke any you do '
            'not recognise.</p>'
        ),
        table=sessions_table(request, entries, USER_REVOKE_ROUTE, {}),
        actions=[
            post_button(
                request,
                USER_REVOKE_ROUTE,
                {},
                'Sign out all other sessions',
                scope='others',
            ),
            post_button(
                request,
                USER_REVOKE_ROUTE,
                {},
                'Sign out everywhere',
                scope='all',
            ),
        ],
    )
    return html_response(body)


def revoke_mine(request):
    """POST ``{prefix}/revoke``: end one, the other or all of the signed-in
    user's sessions."""
    sessions = signed_in(request)
    handle, scope = revocation_target(request, ('others', 'all'))
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
    return revoked(request, count, ended, USER_ROUTE, {}, message)


def user_sessions(request):
    """GET ``{prefix}/users/{userid}``: any user's sessions (admin)."""
    userid = request.matchdict['userid']
    tracker = request.registry.getUtility(IUserIndex)
    current = own_handle(request, userid)
    entries = tracker.index.list(userid, current=current)
    if wants_json(request):
        return listing_json(userid, current, entries)
    route_kw = {'userid': userid}
    body = page(
        request,
        f'Sessions of {userid}',
        intro=(
            f'<p>Every browser and device signed in as '
            f'<strong>{e(userid)}</strong>.</p>'
        ),
        table=sessions_table(request, entries, ADMIN_REVOKE_ROUTE, route_kw),
        actions=[
            post_button(
                request,
                ADMIN_REVOKE_ROUTE,
                route_kw,
                'Revoke all',
                aria_label=f'Revoke all sessions of {userid}',
                scope='all',
            )
        ],
    )
    return html_response(body)


def revoke_users(request):
    """POST ``{prefix}/users/{userid}/revoke``: end one or all sessions of
    any user (admin); events say ``reason='admin'``."""
    userid = request.matchdict['userid']
    tracker = request.registry.getUtility(IUserIndex)
    handle, _ = revocation_target(request, ('all',))
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
    message = f'Revoked {plural(count, "session")} of {userid}.'
    route_kw = {'userid': userid}
    return revoked(request, count, ended, ADMIN_ROUTE, route_kw, message)


# -- helpers of the views ------------------------------------------------


def signed_in(request):
    """``request.user_sessions``, or 403 for an anonymous request."""
    if request.authenticated_userid is None:
        raise HTTPForbidden('Sign in to see your sessions.')
    return request.user_sessions


def listed(entries, handle):
    return any(entry.handle == handle for entry in entries)


def own_handle(request, userid):
    """The handle of this request's session if it is one of ``userid``'s."""
    mine = request.user_sessions
    if mine.userid is not None and str(mine.userid) == str(userid):
        return mine.current
    return None


def wants_json(request):
    """Whether the client prefers ``application/json`` to ``text/html``:
    by quality, then by how specifically it names them; HTML on a tie."""
    accept = request.accept
    if not accept:  # no header, or an invalid one
        return False
    offers = dict(accept.acceptable_offers(['text/html', 'application/json']))
    json_q = offers.get('application/json')
    if json_q is None:
        return False
    html_q = offers.get('text/html')
    if html_q is None:
        return True
    if json_q != html_q:
        return json_q > html_q
    return specificity(accept, 'application/json') > specificity(
        accept, 'text/html'
    )


def specificity(accept, offer):
    """2 if the header names ``offer``, 1 for its ``type/*``, 0 else."""
    kind = offer.split('/')[0] + '/*'
    best = 0
    for media_range, quality, _, _ in accept.parsed:
        media_range = media_range.lower()
        if quality <= 0:
            continue
        if media_range == offer:
            return 2
        if media_range == kind:
            best = 1
    return best


def revocation_target(request, scopes):
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


def request_fields(request):
    """The POST's form fields, or its JSON object."""
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
        return request.POST
    except UNREADABLE_FORM:
        raise HTTPBadRequest('The form cannot be read.') from None


def unreadable_form(exc, request):
    """400 for a POST whose body cannot be read as a form; any other
    error goes on."""
    try:
        request_fields(request)
    except HTTPBadRequest as unreadable:
        return unreadable
    raise exc


def revoked(request, count, ended, route_name, route_kw, message):
    """The answer to a revocation: ``{"revoked": count}`` or a redirect to
    the listing (to the application's root if this session ended)."""
    headers = forget(request) if ended else []
    if wants_json(request):
        response = Response(json_body={'revoked': count})
        response.headerlist.extend(headers)
        response.headers['Cache-Control'] = 'no-store'
        return response
    if ended:
        return HTTPSeeOther(request.application_url + '/', headers=headers)
    flash(request, message)
    return HTTPSeeOther(request.route_url(route_name, **route_kw))


def listing_json(userid, current, entries):
    payload = {'userid': userid, 'current': current, 'sessions': entries}
    response = Response(json_body=payload)
    response.headers.update(LISTING_HEADERS)
    return response


def html_response(body):
    response = Response(body, content_type='text/html', charset='utf-8')
    response.headers.update(LISTING_HEADERS)
    response.headers['X-Frame-Options'] = 'DENY'
    response.headers['Content-Security-Policy'] = "frame-ancestors 'none'"
    return response


def has_session(request):
    return request.registry.queryUtility(ISessionFactory) is not None


def flash(request, message):
    if has_session(request):
        request.session.flash(message, queue=FLASH_QUEUE)


def pop_flashes(request):
    if not has_session(request):
        return []
    session = request.session
    if not session.peek_flash(FLASH_QUEUE):  # no write when there is none
        return []
    return session.pop_flash(FLASH_QUEUE)


def plural(count, noun):
    return f'{count} {noun}' if count == 1 else f'{count} {noun}s'


# -- HTML ------------------------------------------------------------------

CSS = """
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; color: #222;
       background: #fff; }
main { max-width: 64rem; margin: 2rem auto; padding: 0 1rem; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
caption { text-align: left; font-weight: 600; padding-bottom: .5rem; }
th, td { text-align: left; padding: .5rem; border-bottom: 1px solid #ddd;
         vertical-align: top; }
thead th { border-bottom: 2px solid #999; }
tr.current { background: #f3f8ff; }
.badge, .tag { display: inline-block; font-size: .8rem; padding: 0 .4rem;
               border-radius: .6rem; margin-left: .3rem; }
.badge { background: #1a56c4; color: #fff; }
.tag { border: 1px solid #999; color: #444; }
.flash { background: #eef9ee; border: 1px solid #7c7; padding: .5rem 1rem; }
.empty { color: #666; font-style: italic; }
form { display: inline-block; margin: 0 .5rem .5rem 0; }
button { font: inherit; padding: .25rem .75rem; cursor: pointer; }
.visually-hidden { position: absolute; width: 1px; height: 1px;
                   overflow: hidden; clip: rect(0 0 0 0);
                   white-space: nowrap; }
"""

COLUMNS = (
    'Device',
    'Location',
    'IP address',
    'Signed in',
    'Last active',
    'Expires',
)


def e(value):
    """Escaped text of any value (``None`` is empty)."""
    return '' if value is None else escape(str(value), quote=True)


def page(request, title, intro, table, actions):
    """A whole page; ``intro``, ``table`` and ``actions`` are HTML."""
    flashes = ''.join(
        f'<p class="flash">{e(message)}</p>'
        for message in pop_flashes(request)
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<h1>{e(title)}</h1>
<div role="status">{flashes}</div>
{intro}
{table}
<div class="actions">{''.join(actions)}</div>
</main>
</body>
</html>
"""


def sessions_table(request, entries, revoke_route, route_kw, now=None):
    """The table of ``entries``, each with a revoke button."""
    now = time.time() if now is None else now
    head = ''.join(f'<th scope="col">{e(name)}</th>' for name in COLUMNS)
    head += '<th scope="col"><span class="visually-hidden">Actions</span></th>'
    rows = [
        session_row(request, entry, revoke_route, route_kw, now)
        for entry in entries
    ]
    if not rows:
        rows = [
            f'<tr><td class="empty" colspan="{len(COLUMNS) + 1}">'
            'No active sessions.</td></tr>'
        ]
    caption = f'{plural(len(entries), "active session")}'
    return (
        f'<table>\n<caption>{e(caption)}</caption>\n'
        f'<thead><tr>{head}</tr></thead>\n'
        f'<tbody>\n{chr(10).join(rows)}\n</tbody>\n</table>'
    )


def session_row(request, entry, revoke_route, route_kw, now):
    label = entry.label or 'Unknown device'
    device = f'<span title="{e(entry.ua)}">{e(label)}</span>'
    if entry.mobile:
        device += ' <span class="tag">mobile</span>'
    if entry.current:
        device += ' <span class="badge">this device</span>'
    expires_in = entry.expires_in
    if expires_in is None:
        expires = 'never'
    else:
        expires = timestamp(now + expires_in, 'in ' + duration(expires_in))
    button = post_button(
        request,
        revoke_route,
        route_kw,
        'Revoke',
        aria_label=(
            f'Revoke {label}' + (' (this device)' if entry.current else '')
        ),
        handle=entry.handle,
    )
    cells = [
        e(entry.location or 'Unknown'),
        e(entry.ip or '—'),
        timestamp(entry.created, ago(now - (entry.created or 0))),
        timestamp(entry.last_seen, ago(now - (entry.last_seen or 0))),
        expires,
        button,
    ]
    row_class = ' class="current"' if entry.current else ''
    return (
        f'<tr{row_class}><th scope="row">{device}</th>'
        + ''.join(f'<td>{cell}</td>' for cell in cells)
        + '</tr>'
    )


def post_button(request, route_name, route_kw, text, aria_label=None, **data):
    """A one-button POST form carrying the CSRF token and ``data``."""
    fields = {'csrf_token': get_csrf_token(request), **data}
    inputs = ''.join(
        f'<input type="hidden" name="{e(name)}" value="{e(value)}">'
        for name, value in fields.items()
    )
    action = request.route_path(route_name, **route_kw)
    label = f' aria-label="{e(aria_label)}"' if aria_label else ''
    return (
        f'<form method="post" action="{e(action)}">{inputs}'
        f'<button type="submit"{label}>{e(text)}</button></form>'
    )


def timestamp(epoch, text):
    """``text`` in a ``<time>`` element with the ISO date and time."""
    iso = datetime.datetime.fromtimestamp(
        epoch or 0, tz=datetime.timezone.utc
    ).isoformat(timespec='seconds')
    return f'<time datetime="{e(iso)}" title="{e(iso)}">{e(text)}</time>'


UNITS = (
    (365 * 86400, 'year'),
    (30 * 86400, 'month'),
    (7 * 86400, 'week'),
    (86400, 'day'),
    (3600, 'hour'),
    (60, 'minute'),
)


def duration(seconds):
    """``'2 minutes'``, ``'1 hour'``, ``'less than a minute'``: the
    largest whole unit."""
    seconds = max(0, seconds)
    for size, unit in UNITS:
        if seconds >= size:
            return plural(int(seconds // size), unit)
    return 'less than a minute'


def ago(seconds):
    """``'just now'`` or ``'2 minutes ago'``."""
    if seconds < 60:
        return 'just now'
    return duration(seconds) + ' ago'
