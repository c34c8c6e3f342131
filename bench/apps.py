"""The stacks under test, as Pyramid WSGI applications.

Every application has the same routes:

``/untouched``
    touches no session namespace;
``/read``
    reads ``user`` from the Redis namespace ``r``;
``/write``
    increments ``visits`` in ``r`` (without a cookie this creates a
    session);
``/visitor``
    fills ``r`` and the cookie namespace ``c``: makes the returning
    visitor of the anonymous scenarios; never timed;
``/anon``
    an anonymous visitor's first page: stores a CSRF token and a few
    small keys in ``r`` and answers the token; never timed;
``/login`` (``POST user=…&csrf_token=…``)
    checks the CSRF token of ``r`` and logs ``user`` in on ``r``: with
    :func:`pyramid_session_suite.login` on the suite's variants with the
    user index (``index``, ``index+policy``, ``users``), with
    ``invalidate()`` and a write elsewhere (the anchor, the suite's
    ``plain`` variant). The session keeps its data and gets ``user``;
``/tabs?key=…[&key=…][&value=N][&delete=1][&pause=S]``
    loads the session of ``r``, pauses ``pause`` seconds, then sets each
    ``key`` to the integer ``value`` (or, with ``delete``, deletes it): one
    browser tab of the tabs scenario (see :mod:`.tabs`); without ``key``,
    answers the session as JSON.

``floor`` answers every route with a constant and has no sessions at all.
``anchor`` and ``suite`` are built once with plain namespaces; the logged-in
scenarios ``user read`` and ``user write`` use the ``users`` variant of the
suite, which includes ``pyramid_session_suite.policy`` (and so the user
index) and the cross-domain include on ``r``, with every setting at its
default. The anchor has no such feature: its ``users`` variant is the same
application. ``plain user read`` and ``plain user write`` run the same
logged-in visitor (logged in by the ``plain`` suite's own ``/login``) on the
suite's ``plain`` variant: the features' cost is the difference.
``index user read`` and ``policy user read`` run such a visitor (a user of
its own each) on the suite variants in between, ``index`` (the user index
alone) and ``index+policy`` (the user index and the policy, without
cross-domain sharing): the cost of each feature.
"""

import hmac
import json
import time
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPBadRequest
from pyramid.response import Response
from pyramid.session import SignedCookieSessionFactory

STACKS = ('floor', 'anchor', 'suite')

#: the physical limit of a session read (or write), in-process only: the
#: floor's request, then the operation's Redis commands straight through
#: redis-py (``GETEX``; ``GETEX`` and ``SET``) on a session-sized key, back
#: to back (see :class:`.workloads.Limit`); no application of its own
LIMIT = 'limit'

#: the suffix of a stack whose Redis client parses replies with redis-py's
#: pure-Python parser (the others: hiredis, when it is installed)
PYTHON = '/py'

#: the stacks that run the read and write scenarios with both parsers
PARSER_STACKS = ('anchor', 'suite', LIMIT)

#: application variants, by the features the suite has in each: ``plain``
#: namespaces; ``index``, the per-user index alone; ``index+policy``, the
#: index and the unique/timed session policy; ``users``, the index, the
#: policy and cross-domain sharing (the logged-in stacks); ``crossdomain``,
#: the cross-domain include alone, for its token codec
FEATURES = {
    'plain': (),
    'index': ('index',),
    'index+policy': ('index', 'policy'),
    'users': ('index', 'policy', 'crossdomain'),
    'crossdomain': ('crossdomain',),
}
VARIANTS = tuple(FEATURES)

SECRET = 'benchmark-only-secret-48-bytes-never-deployed!!'
INDEX_SECRET = 'benchmark-only-user-index-secret-never-deployed'
#: the cross-domain group of the token scenarios: two sites, one secret
#: (48 bytes, no spaces: the setting is a list; the include wants 32 or
#: more bytes)
XD_SITES = ('https://hub.example', 'https://site-b.example')
XD_SECRET = 'benchmark-only-cross-domain-secret-never-deployed'

ANCHOR_VERSION = '0.4.0'

#: session timeout of the Redis namespace, in seconds
TIMEOUT = 1200

#: the small keys of an anonymous visitor's session (with a CSRF token);
#: a login adds ``user``
ANONYMOUS_DATA = {'theme': 'dark', 'lang': 'en-GB', 'tz': 'Europe/Paris'}

ROUTES = {
    'untouched': '/untouched',
    'read': '/read',
    'write': '/write',
    'visitor': '/visitor',
    'anon': '/anon',
    'login': '/login',
    'tabs': '/tabs',
}


def untouched_view(request):
    return Response(b'untouched')


def read_view(request):
    return Response(str(request.session_multi['r'].get('user')))


def write_view(request):
    session = request.session_multi['r']
    session['visits'] = visits = session.get('visits', 0) + 1
    return Response(str(visits))


def visitor_view(request):
    request.session_multi['r'].update({'user': 'alice', 'visits': 0})
    request.session_multi['c']['theme'] = 'dark'
    return Response(b'visitor')


def fill_anonymous(session):
    """What an anonymous visitor's session holds: a CSRF token and a few
    small keys. Return the token."""
    token = session.new_csrf_token()
    session.update(ANONYMOUS_DATA)
    return token


def anon_view(request):
    return Response(fill_anonymous(request.session_multi['r']))


def checked_login(request):
    """The session of ``r`` and the user id posted, once the posted CSRF
    token matched the session's."""
    session = request.session_multi['r']
    expected = session.get_csrf_token().encode('ascii')
    posted = request.POST.get('csrf_token', '').encode('ascii', 'replace')
    if not hmac.compare_digest(expected, posted):
        raise HTTPBadRequest('bad CSRF token')
    return session, request.POST['user']


def anchor_login_view(request):
    """A login with ``pyramid_session_redis``: a new session id (against
    session fixation) by ``invalidate()``, the data carried over, the user
    id written."""
    session, userid = checked_login(request)
    data = dict(session)
    session.invalidate()
    session.update(data)
    session['user'] = userid
    return Response(userid)


def suite_login_view(request):
    """A login with :func:`pyramid_session_suite.login` (new id, data
    kept, recorded in the user index under the policy)."""
    from pyramid_session_suite import login

    session, userid = checked_login(request)
    headers = login(request, userid)
    session['user'] = userid
    response = Response(userid)
    response.headerlist.extend(headers)
    return response


def tabs_view(request):
    """One tab writing (or deleting) its own keys of ``r``, after a pause
    with the session loaded; or, given no key, the session as JSON."""
    session = request.session_multi['r']
    keys = request.GET.getall('key')
    if not keys:
        return Response(json.dumps(dict(session)))
    loaded = [session.get(key) for key in keys]
    time.sleep(float(request.GET.get('pause', 0)))
    for key in keys:
        if request.GET.get('delete'):
            session.pop(key, None)
        else:
            session[key] = int(request.GET.get('value', 0))
    return Response(json.dumps(loaded))


def floor_view(request):
    return Response(b'hello')


VIEWS = {
    'untouched': untouched_view,
    'read': read_view,
    'write': write_view,
    'visitor': visitor_view,
    'anon': anon_view,
    'tabs': tabs_view,
}


def add_routes(config, views):
    for name, path in ROUTES.items():
        config.add_route(name, path)
        config.add_view(views[name], route_name=name)


def cookie_factory():
    return SignedCookieSessionFactory(SECRET, cookie_name='c')


def build_floor(client=None):
    """Bare Pyramid: the same routes, no sessions."""
    config = Configurator()
    add_routes(config, dict.fromkeys(ROUTES, floor_view))
    return config.make_wsgi_app()


def build_anchor(client):
    """``pyramid_session_multi`` with a ``pyramid_session_redis`` namespace
    (on its own client, made once) and a signed cookie namespace."""
    import pyramid_session_multi
    import pyramid_session_redis

    version = getattr(pyramid_session_multi, '__VERSION__', None)
    if version != ANCHOR_VERSION:
        raise RuntimeError(
            f'the anchor is pyramid_session_multi {ANCHOR_VERSION}, but '
            f'{pyramid_session_multi.__file__} is {version!r}'
        )

    def redis_client_callable(request, **redis_options):
        return client

    config = Configurator()
    config.include('pyramid_session_multi')
    factory = pyramid_session_redis.RedisSessionFactory(
        secret=SECRET,
        timeout=TIMEOUT,
        cookie_name='r',
        redis_client_callable=redis_client_callable,
    )
    pyramid_session_multi.register_session_factory(
        config, 'r', factory, cookie_name='r'
    )
    pyramid_session_multi.register_session_factory(
        config, 'c', cookie_factory(), cookie_name='c'
    )
    add_routes(config, dict(VIEWS, login=anchor_login_view))
    return config.make_wsgi_app()


class SessionUserPolicy:
    """The security policy of the logged-in stacks: the user is the Redis
    session's ``user`` key (what the login view sets), as an application's
    session-based policy would say; the user index checks it on every
    request that loads the session."""

    def identity(self, request):
        return self.authenticated_userid(request)

    def authenticated_userid(self, request):
        return request.session_multi['r'].get('user')

    def permits(self, request, context, permission):
        return self.authenticated_userid(request) is not None

    def remember(self, request, userid, **kw):
        request.session_multi['r']['user'] = userid
        return []

    def forget(self, request, **kw):
        request.session_multi['r'].pop('user', None)
        return []


def build_suite(
    client, users=False, crossdomain=False, index=False, policy=False
):
    """``pyramid_session_suite`` with its Redis namespace and a signed
    cookie namespace; with ``index``, the user index on the Redis namespace
    and a security policy that finds the user in the session; with
    ``policy``, the policy too (and so the user index); with
    ``crossdomain``, the cross-domain include on the Redis namespace (sites
    :data:`XD_SITES`, secret :data:`XD_SECRET`); with ``users``, all
    three. Every other setting is at its default."""
    import pyramid_session_suite

    if users:  # logged-in stacks: every feature
        index = policy = crossdomain = True
    index = index or policy
    settings = {}
    if index:
        settings = {
            'session_suite.user_index.namespace': 'r',
            'session_suite.user_index.secret': INDEX_SECRET,
        }
    if crossdomain:
        settings |= {
            'session_suite.crossdomain.sites': ' '.join(XD_SITES),
            'session_suite.crossdomain.secret': XD_SECRET,
            'session_suite.crossdomain.namespace': 'r',
        }
    config = Configurator(settings=settings)
    config.include('pyramid_session_suite')
    config.register_session_factory(
        'r',
        pyramid_session_suite.RedisSessionFactory(
            SECRET, redis_client=client, cookie_name='r', timeout=TIMEOUT
        ),
    )
    config.register_session_factory('c', cookie_factory(), cookie_name='c')
    if index:
        config.set_security_policy(SessionUserPolicy())
        config.include('pyramid_session_suite.user_index')
    if policy:
        config.include('pyramid_session_suite.policy')
    if crossdomain:
        config.include('pyramid_session_suite.crossdomain')
    login_view = suite_login_view if index else anchor_login_view
    add_routes(config, dict(VIEWS, login=login_view))
    return config.make_wsgi_app()


def base_stack(stack):
    """``suite`` for ``suite/py``: the stack whatever its parser."""
    return stack.removesuffix(PYTHON)


def python_stack(stack):
    """``suite/py``: ``stack`` with redis-py's pure-Python parser."""
    return stack + PYTHON


def is_python(stack):
    """Whether ``stack`` is forced onto the pure-Python parser."""
    return stack.endswith(PYTHON)


def build(stack, client, variant='plain'):
    """The WSGI application of ``stack`` (``variant`` matters for the
    suite only; the parser suffix does not matter: it is the client's);
    ``client`` is its Redis client."""
    stack = base_stack(stack)
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}')
    if stack == 'floor':
        return build_floor(client)
    if stack == 'anchor':
        return build_anchor(client)
    if stack == 'suite':
        return build_suite(client, **dict.fromkeys(FEATURES[variant], True))
    raise ValueError(f'unknown stack {stack!r}')


def tracker_of(app):
    """The user index utility of a suite ``users`` application."""
    from pyramid_session_suite.interfaces import IUserIndex

    return app.registry.getUtility(IUserIndex)


def crossdomain_of(app):
    """The :class:`pyramid_session_suite.crossdomain.CrossDomain` of a
    suite ``crossdomain`` application: its token codec, Redis client and
    claim prefix, as the include set them up."""
    from pyramid_session_suite.crossdomain import CROSSDOMAIN_KEY

    return app.registry[CROSSDOMAIN_KEY]
