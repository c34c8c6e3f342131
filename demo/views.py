"""The demo's pages. Every POST must carry the CSRF token of
``request.session`` (``require_csrf`` is on): without it, Pyramid answers
400 Bad Request before the view runs."""

from pyramid.httpexceptions import HTTPBadRequest, HTTPSeeOther
from pyramid.response import Response
from pyramid.view import view_config

from pyramid_session_suite import LoginRefusedError, login, logout
from pyramid_session_suite.crossdomain import CROSSDOMAIN_KEY
from pyramid_session_suite.crossdomain.views import push_url

from . import templates
from .security import ADMINS, DEMO_USERS, check_password

#: the route of the cross-domain push flow's first step
BEGIN_ROUTE = 'session_suite.crossdomain.begin'

#: why the session named by the request's cookie ended (set by the suite)
ENDED_KEY = 'session_suite.ended'


@view_config(route_name='home', request_method='GET')
def home(request):
    main = request.session_multi['main']  # Redis; also request.session
    visits = main['visits'] = main.get('visits', 0) + 1
    prefs = request.session_multi['prefs']  # signed cookie
    theme = prefs.get('theme', templates.DEFAULT_THEME)
    csrf_token = request.session.get_csrf_token()
    visitor = visitor_of(request)
    site = Site(request)
    accessed = sorted(request.session_multi)
    return Response(
        templates.home(
            request, visitor, site, visits, theme, csrf_token, accessed
        )
    )


@view_config(route_name='theme', request_method='POST')
def set_theme(request):
    theme = request.POST.get('theme')
    if theme not in templates.THEMES:
        raise HTTPBadRequest('unknown theme')
    request.session_multi['prefs']['theme'] = theme
    return HTTPSeeOther(request.route_url('home'))


@view_config(route_name='forget', request_method='POST')
def forget(request):
    headers = []
    if request.authenticated_userid is not None:
        # signed in: end the session in the user index too
        headers = logout(request)
    request.session_multi.invalidate()
    return HTTPSeeOther(request.route_url('home'), headers=headers)


@view_config(route_name='about', request_method='GET')
def about(request):
    # request.session_multi costs nothing until a namespace is read (and
    # session_suite.policy.skip_paths keeps the policy from reading one)
    return Response(templates.about(request, sorted(request.session_multi)))


# -- signing in and out ------------------------------------------------------


@view_config(route_name='login', request_method='GET')
def login_form(request):
    site = Site(request)
    next_url = next_of(request, site)
    ended = request.params.get('session_ended')
    if site.in_group and not site.is_hub:
        # sign-ins happen on the hub; come back here by the push flow
        back = request.route_url(
            BEGIN_ROUTE,
            _query={'next': next_url or request.route_url('home')},
        )
        query = {'next': back}
        if ended in templates.ENDED_MESSAGES:
            query['session_ended'] = ended
        login_url = request.route_url('login', _app_url=site.hub, _query=query)
        return HTTPSeeOther(login_url)
    visitor = visitor_of(request)
    if visitor.userid is not None and next_url:
        return HTTPSeeOther(next_url)
    return login_page(request, visitor, site, next_url, ended=ended)


@view_config(route_name='login', request_method='POST')
def login_submit(request):
    site = Site(request)
    next_url = next_of(request, site)
    userid = request.POST.get('username', '').strip()
    password = request.POST.get('password', '')
    visitor = visitor_of(request)
    if not check_password(userid, password):
        return login_page(
            request,
            visitor,
            site,
            next_url,
            username=userid,
            error='Wrong user name or password.',
        )
    target = next_url or request.route_url('home')
    if visitor.userid == userid:
        # already signed in as this user in this browser: nothing to do
        return HTTPSeeOther(target)
    try:
        headers = login(request, userid)  # rotates the session id
    except LoginRefusedError as exc:
        # the account is signed in elsewhere and was active lately (409);
        # nothing changed: say when to try again, on the sign-in page.
        retry_after = exc.retry_seconds
        response = login_page(
            request,
            visitor,
            site,
            next_url,
            username=userid,
            refused=retry_after,
        )
        response.status = exc.status
        response.headers['Retry-After'] = str(retry_after)
        return response
    request.session.flash(f'Signed in as {userid}.')
    if site.is_hub:
        # through the other site(s) and back: each has the new session at
        # its next page view, whatever it had before
        target = push_url(request, target)
    return HTTPSeeOther(target, headers=headers)


@view_config(route_name='logout', request_method='POST')
def logout_submit(request):
    # ends the session in Redis and in the user index, on every site of
    # the group: they share it
    headers = logout(request)
    request.session.flash('You signed out.')  # in a new session
    return HTTPSeeOther(request.route_url('home'), headers=headers)


def login_page(request, visitor, site, next_url, **kw):
    prefs = request.session_multi['prefs']  # signed cookie
    return Response(
        templates.login(
            request,
            visitor,
            site,
            request.session.get_csrf_token(),
            next_url,
            theme=prefs.get('theme', templates.DEFAULT_THEME),
            **kw,
        )
    )


# -- what the pages show -----------------------------------------------------


class Visitor:
    """Who is asking: ``userid`` (``None`` when anonymous), whether an
    administrator, why their previous session ended (if it just did) and
    their flash messages."""

    def __init__(self, userid, ended, flashes):
        self.userid = userid
        self.is_admin = userid in ADMINS
        self.ended = ended
        self.flashes = flashes
        self.users = sorted(DEMO_USERS)


def visitor_of(request):
    session = request.session
    flashes = session.pop_flash() if session.peek_flash() else []
    return Visitor(
        request.authenticated_userid, request.environ.get(ENDED_KEY), flashes
    )


class Site:
    """Where the request is: its origin, the group's hub and the other
    sites (``in_group`` is false for an address outside the group)."""

    def __init__(self, request):
        crossdomain = request.registry[CROSSDOMAIN_KEY]
        self.here = request.host_url
        self.hub = crossdomain.hub
        self.sites = crossdomain.sites
        self.in_group = self.here in self.sites
        self.is_hub = self.here == self.hub
        self.others = crossdomain.other_sites(self.here)
        self.crossdomain = crossdomain
        # the push links: on each site but the hub, get the hub's session
        # and land on that site's home page
        self.push = [
            (
                site,
                request.route_url(
                    BEGIN_ROUTE, _app_url=site, _query={'next': site + '/'}
                ),
            )
            for site in self.sites
            if site != self.hub
        ]


def next_of(request, site):
    """The ``next`` parameter if it is a path here or a URL on a site of
    the group (never elsewhere: no open redirect), else ``None``."""
    return site.crossdomain.safe_next(request.params.get('next'), None)
