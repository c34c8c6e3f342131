"""One test per threat, against the real applications and a real Redis:
session fixation, cookie attributes, cross-site request forgery, open
redirects, oversized cookies, weak secrets."""

import logging
import pathlib
import re
import time
from urllib.parse import urlsplit
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
import pytest
from webtest import TestApp

import pyramid_session_suite
from pyramid_session_suite import (
    CookieSessionFactory,
    RedisSessionFactory,
    WeakSecret,
    _namespaces as namespaces,
    config as core,
    crossdomain,
    policy,
    user_index,
)
from pyramid_session_suite._settings import REQUIRED
from pyramid_session_suite.crossdomain import CROSSDOMAIN_KEY
from pyramid_session_suite.crossdomain.tokens import TokenCodec
from pyramid_session_suite.crossdomain.views import STATE_COOKIE, TRIED_COOKIE
from pyramid_session_suite.interfaces import (
    ISessionMultiManagerConfig,
    IUserIndex,
)
from pyramid_session_suite.redis.login_records import redis_key

from .conftest import SECRET, live_keys
from .crossdomainapp import HUB, SITE, XD_SECRET, by_host, make_site
from .usersapp import make_config, settings_for

USER_INDEX = 'pyramid_session_suite.user_index'
PREFIX = '/_session_suite/xd'


def factory_of(app, namespace='main'):
    manager = app.registry.getUtility(ISessionMultiManagerConfig)
    return manager.get_namespace_config(namespace)


def session_keys(redis_client):
    """The keys of the sessions Redis holds (not the ended ones)."""
    return set(live_keys(redis_client, 'session_suite:main:*'))


def snapshot(redis_client):
    """Every key and its value (not its TTL, which reads refresh)."""
    return {key: redis_client.dump(key) for key in redis_client.keys('*')}


def set_cookies(res, name):
    return [
        header
        for header in res.headers.getall('Set-Cookie')
        if header.startswith(name + '=')
    ]


def attributes(header):
    """``{'httponly': True, 'samesite': 'Lax', 'path': '/', ...}``"""
    found = {}
    for part in header.split(';')[1:]:
        key, _, value = part.strip().partition('=')
        found[key.lower()] = value or True
    return found


def deletes(header):
    return header.split(';', 1)[0].endswith('=') and 'Max-Age=0' in header


# -- session fixation ------------------------------------------------------


@pytest.mark.parametrize('include', ['pyramid_session_suite', USER_INDEX])
def test_login_gives_a_planted_anonymous_session_a_new_id(
    redis_url, redis_client, include
):
    app = make_config(redis_url, include=include).make_wsgi_app()
    attacker = TestApp(app)
    attacker.get('/whoami?write=1')  # an anonymous session, with data
    planted = attacker.cookies['main']
    [planted_id] = session_keys(redis_client)
    victim = TestApp(app)
    victim.set_cookie('main', planted)
    victim.get('/login?user=alice')
    assert victim.cookies['main'] != planted
    assert planted_id not in session_keys(redis_client)
    assert victim.get('/whoami').json['user'] == 'alice'
    # the attacker's copy of the cookie leads nowhere
    res = attacker.get('/whoami')
    assert res.json['user'] is None and res.json['n'] is None


@pytest.mark.parametrize(
    'forgery', ['signed, not in Redis', 'unsigned', 'outside the prefix']
)
def test_an_id_redis_does_not_hold_is_never_adopted(
    redis_url, redis_client, forgery
):
    app = make_config(redis_url).make_wsgi_app()
    factory = factory_of(app)
    chosen = factory.new_session_id()
    signer = factory.cookie_signer
    cookie, planted_id = {
        'signed, not in Redis': (signer.dumps(chosen).decode(), chosen),
        'unsigned': (chosen, chosen),
        'outside the prefix': (
            signer.dumps('session:' + chosen.rsplit(':', 1)[1]).decode(),
            'session:' + chosen.rsplit(':', 1)[1],
        ),
    }[forgery]
    victim = TestApp(app)
    victim.set_cookie('main', cookie)
    victim.get('/whoami?write=1')  # writes before login
    victim.get('/login?user=alice')
    victim.get('/whoami?write=1')  # and after
    [real] = session_keys(redis_client)
    assert real != planted_id and not redis_client.exists(planted_id)
    session_id = factory.session_id_from_cookie(victim.cookies['main'])
    assert session_id != planted_id and redis_key(session_id) == real


# -- cookie attributes -----------------------------------------------------


def redis_app(redis_url, **cookie):
    settings = {
        f'session_suite.namespace.main.{k}': v for k, v in cookie.items()
    }
    return TestApp(make_config(redis_url, **settings).make_wsgi_app())


@pytest.mark.parametrize(
    'cookie, secure, samesite',
    [
        ({}, False, 'Lax'),
        (
            {'cookie_secure': 'true', 'cookie_samesite': 'Strict'},
            True,
            'Strict',
        ),
        ({'cookie_secure': 'true', 'cookie_samesite': 'None'}, True, 'None'),
        # a browser ignores the deletion of a __Host- cookie that does not
        # say Secure: logging out would leave it in place
        ({'cookie_name': '__Host-main', 'cookie_secure': 'true'}, True, 'Lax'),
    ],
)
def test_redis_namespace_cookies_carry_their_attributes(
    redis_url, redis_client, cookie, secure, samesite
):
    browser = redis_app(redis_url, **cookie)
    name = cookie.get('cookie_name', 'main')
    environ = {'wsgi.url_scheme': 'https'}
    sent = {}
    res = browser.get('/login?user=alice', extra_environ=environ)
    [sent['new']] = set_cookies(res, name)
    browser.set_cookie(name, sent['new'].split(';')[0].split('=', 1)[1])
    res = browser.get('/logout', extra_environ=environ)
    [sent['logout']] = set_cookies(res, name)
    browser.get('/whoami?write=1', extra_environ=environ)
    redis_client.flushall()  # the session is gone: its cookie is stale
    res = browser.get('/whoami', extra_environ=environ)
    [sent['stale']] = set_cookies(res, name)
    assert not deletes(sent['new'])
    assert deletes(sent['logout']) and deletes(sent['stale'])
    for header in sent.values():
        found = attributes(header)
        assert found['httponly'] is True, header
        assert found.get('secure', False) is secure, header
        assert found['samesite'] == samesite, header
        assert found['path'] == '/' and 'domain' not in found, header


def cookie_namespace_app(**cookie):
    def prefs(request):
        session = request.session_multi['prefs']
        if request.params.get('do') == 'write':
            session['theme'] = 'dark'
        elif request.params.get('do') == 'forget':
            session.invalidate()
        return {'theme': session.get('theme')}

    settings = {
        'session_suite.namespaces': 'prefs',
        'session_suite.namespace.prefs.secret': SECRET,
    }
    settings.update(
        {f'session_suite.namespace.prefs.{k}': v for k, v in cookie.items()}
    )
    config = Configurator(settings=settings)
    config.include('pyramid_session_suite')
    config.add_route('prefs', '/')
    config.add_view(prefs, route_name='prefs', renderer='json')
    return TestApp(config.make_wsgi_app())


@pytest.mark.parametrize(
    'cookie, secure, samesite',
    [
        ({}, False, 'Lax'),
        (
            {'cookie_secure': 'true', 'cookie_samesite': 'Strict'},
            True,
            'Strict',
        ),
        (
            {'cookie_name': '__Host-prefs', 'cookie_secure': 'true'},
            True,
            'Lax',
        ),
    ],
)
def test_cookie_namespace_cookies_carry_their_attributes(
    cookie, secure, samesite
):
    browser = cookie_namespace_app(**cookie)
    name = cookie.get('cookie_name', 'prefs')
    environ = {'wsgi.url_scheme': 'https'}
    [written] = set_cookies(
        browser.get('/?do=write', extra_environ=environ), name
    )
    browser.set_cookie(name, written.split(';')[0].split('=', 1)[1])
    res = browser.get('/?do=forget', extra_environ=environ)
    [deleted] = set_cookies(res, name)
    assert not deletes(written) and deletes(deleted)
    for header in (written, deleted):
        found = attributes(header)
        assert found['httponly'] is True, header
        assert found.get('secure', False) is secure, header
        assert found['samesite'] == samesite, header
        assert found['path'] == '/' and 'domain' not in found, header


@pytest.fixture
def group(redis_url):
    """The hub and a site, flows on; alice signed in at the hub, over
    https."""
    hub = make_site(redis_url, flows='redirect push script')
    site = make_site(redis_url, flows='redirect push script')
    browser = TestApp(
        by_host({'www.site-a.test': hub, 'www.site-b.test': site}),
        extra_environ={'HTTP_ACCEPT': 'text/html', 'wsgi.url_scheme': 'https'},
    )
    browser.get(HUB + '/login?user=alice')
    return browser, hub, site


def test_crossdomain_cookies_carry_their_attributes(group):
    browser, hub, site = group
    sent = []
    res = browser.get(SITE + '/page')  # bounced to the hub
    state, tried = (
        set_cookies(res, STATE_COOKIE),
        set_cookies(res, TRIED_COOKIE),
    )
    sent += state + tried
    res = res.follow().follow()  # the hub's token, redeemed at the site
    adopted = set_cookies(res, 'main')
    sent += adopted
    cleared = set_cookies(res, STATE_COOKIE) + set_cookies(res, TRIED_COOKIE)
    sent += cleared
    assert res.follow().text.count('<p id="user">alice</p>') == 1
    script = hub.registry[CROSSDOMAIN_KEY].codec.mint(
        factory_of(hub).session_id_from_cookie(browser.cookies['main']),
        HUB,
        SITE,
        flow='script',
    )
    # in a third-party request, the site's own Lax cookie is not sent
    third_party = TestApp(browser.app, extra_environ=browser.extra_environ)
    res = third_party.get(
        f'{SITE}{PREFIX}/s/{script}.js', headers={'Referer': HUB + '/page'}
    )
    [loaded] = set_cookies(res, 'main')
    assert [len(state), len(tried), len(adopted), len(cleared)] == [1, 1, 1, 2]
    assert all(deletes(header) for header in cleared)
    for header in sent:
        found = attributes(header)
        assert found['httponly'] is True, header
        assert found['secure'] is True, header
        assert found['samesite'] == 'Lax', header
    # a third-party script's cookie is sent only if it says so
    assert attributes(loaded)['samesite'] == 'None'
    assert attributes(loaded)['secure'] is True


def test_every_module_that_sets_cookies_is_tested_here():
    package = pathlib.Path(pyramid_session_suite.__file__).parent
    setting = {
        str(path.relative_to(package))
        for path in package.rglob('*.py')
        if re.search(r'\b(set|delete)_cookie\(', path.read_text())
    }
    # the namespaces' cookies, the cross-domain state and tried cookies
    assert setting == {
        'redis/__init__.py',
        'cookie.py',
        'crossdomain/views.py',
    }


# -- cross-site request forgery --------------------------------------------


def suite_views(app):
    """``(route, request methods, require_csrf)`` of this package's
    views, from the introspector."""
    found = []
    for route in app.registry.introspector.get_category('routes'):
        name = route['introspectable']['name']
        for view in route['related']:
            if (
                name.startswith('session_suite.')
                and view.category_name == 'views'
                and not view['exception_only']
            ):
                methods = view['request_methods']
                methods = (methods,) if isinstance(methods, str) else methods
                found.append((name, methods, view['require_csrf']))
    return found


def changes_state(methods):
    return methods is None or not set(methods) <= {'GET', 'HEAD'}


def test_every_state_changing_view_needs_the_csrf_token(
    redis_url, redis_client
):
    config = make_config(
        redis_url, **{'session_suite.user_index.views': 'true'}
    )
    app = config.make_wsgi_app()
    posts = [v for v in suite_views(app) if changes_state(v[1])]
    assert {route for route, _, _ in posts} == {
        'session_suite.sessions.revoke',
        'session_suite.admin.revoke',
    }
    admin = TestApp(app)
    admin.get('/login?user=admin')
    token = admin.get('/sessions').forms[0]['csrf_token'].value
    paths = {
        'session_suite.sessions.revoke': '/sessions/revoke',
        'session_suite.admin.revoke': '/sessions/users/admin/revoke',
    }
    for route, _, require_csrf in posts:
        assert require_csrf is True, route
        other = TestApp(app)  # another session of admin's, to revoke
        other.get('/login?user=admin')
        handle = other.get('/mine').json['current']
        before = snapshot(redis_client)
        for forged in ({}, {'csrf_token': 'forged'}):
            res = admin.post(
                paths[route], {'handle': handle, **forged}, status=400
            )
            assert 'Set-Cookie' not in res.headers
        assert snapshot(redis_client) == before
        assert other.get('/whoami').json['user'] == 'admin'
        # with its token, the same request goes through
        fields = {'handle': handle, 'csrf_token': token}
        admin.post(paths[route], fields, status=303)
        assert other.get('/whoami').json['user'] is None


def test_every_crossdomain_view_is_bound_to_a_single_use_token(
    group, redis_client
):
    browser, hub, site = group
    views = suite_views(site)
    # no view of the flows takes anything but GET: nothing for a cross-site
    # form to post to; each GET that changes something needs a token that
    # only this browser, on this site, in this flow, can use
    assert all(methods == ('GET',) for _, methods, _ in views)
    codec = hub.registry[CROSSDOMAIN_KEY].codec
    sid = factory_of(hub).session_id_from_cookie(browser.cookies['main'])
    victim = TestApp(by_host({'www.site-b.test': site}))
    environ = {'wsgi.url_scheme': 'https', 'HTTP_ACCEPT': 'text/html'}

    def import_(victim):
        # the attacker's own token, for their own flow (state), sent to
        # the victim's browser: it would sign the victim in as alice
        token = codec.mint(sid, HUB, SITE, state='attacker-state-' * 2)
        return victim.get(
            f'{SITE}{PREFIX}/import',
            {'t': token, 'next': '/'},
            extra_environ=environ,
            status=400,
        )

    def script(victim):
        token = codec.mint(sid, HUB, SITE, flow='script')
        return victim.get(
            f'{SITE}{PREFIX}/s/{token}.js',
            headers={'Referer': 'https://evil.example/'},
            extra_environ=environ,
            status=404,
        )

    def export(victim):
        # the browser signed in at the hub, sent to hand its session over
        # to a site outside the group
        return browser.get(
            f'{HUB}{PREFIX}/export',
            {'dst': 'https://evil.example', 'state': 's' * 32},
            status=400,
        )

    def begin(victim):
        # changes no session: it only starts a flow, on this browser
        return victim.get(
            f'{SITE}{PREFIX}/begin',
            {'next': '/'},
            extra_environ=environ,
            status=303,
        )

    checks = {
        'session_suite.crossdomain.import': import_,
        'session_suite.crossdomain.script': script,
        'session_suite.crossdomain.export': export,
        'session_suite.crossdomain.begin': begin,
    }
    assert {route for route, _, _ in views} == set(checks)
    for route, check in checks.items():
        before = snapshot(redis_client)
        res = check(victim)
        assert not set_cookies(res, 'main'), route
        assert snapshot(redis_client) == before, route
        assert 'main' not in victim.cookies


@pytest.mark.parametrize(
    'body, content_type',
    [
        (b'csrf_token=x', 'multipart/form-data'),  # no boundary
        (
            b'csrf_token=x',
            'application/x-www-form-urlencoded; charset=latin-1',
        ),
        (b'csrf_token=x', 'application/x-www-form-urlencoded; charset=bogus'),
        (b'[' * 5000, 'application/json'),
        (b'{"scope": "all"}', 'application/json; charset=bogus'),
    ],
)
def test_a_post_that_cannot_be_read_is_refused(
    redis_url, redis_client, body, content_type
):
    config = make_config(
        redis_url, **{'session_suite.user_index.views': 'true'}
    )
    admin = TestApp(config.make_wsgi_app())
    admin.get('/login?user=admin')
    token = admin.get('/sessions').forms[0]['csrf_token'].value
    before = snapshot(redis_client)
    for path in ('/sessions/revoke', '/sessions/users/admin/revoke'):
        for headers in ({}, {'X-CSRF-Token': token}):
            # Pyramid's CSRF check reads the form first, then the view
            res = admin.post(
                path,
                body,
                headers={'Content-Type': content_type, **headers},
                status=400,
            )
            assert 'Set-Cookie' not in res.headers
    assert snapshot(redis_client) == before


# -- open redirects --------------------------------------------------------

HOSTILE_URLS = [
    '//evil.example/',
    '///evil.example/',
    '/\\evil.example',
    '\\/evil.example',
    '/\t/evil.example',
    '/%09/evil.example',
    '%2F%2Fevil.example',
    '/%2F%2Fevil.example',
    'https://evil.example/',
    'HTTPS://EVIL.EXAMPLE/',
    'https:evil.example',
    'https:/evil.example',
    'https://www.site-a.test@evil.example/',
    'https://www.site-a.test.evil.example/',
    'https://www.site-a.test:443.evil.example/',
    'https://evil.example\\@www.site-a.test/',
    'https://evil.example#@www.site-a.test/',
    'http://www.site-a.test',  # the right host, the wrong scheme
    'javascript:alert(1)',
    'JavaScript:alert(1)',
    ' javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    '\x00//evil.example',
    '//evil.example%2F@www.site-a.test',
    'https://\u0435vil.example/',
    '/\r\nLocation: https://evil.example/',
    '/\x00//evil.example',  # control characters: not a header to send
    '/\x0b/evil.example',
    '/\x7f',
    '/\u2603',  # not latin-1: no WSGI server can send it
    'https://www.site-a.test/\u2603',
]


def lands_in_the_group(location):
    parts = urlsplit(location)
    return parts.scheme == 'https' and parts.netloc in (
        'www.site-a.test',
        'www.site-b.test',
    )


@pytest.mark.parametrize('next_url', HOSTILE_URLS)
def test_next_urls_never_leave_the_group(group, next_url):
    browser, hub, site = group
    codec = hub.registry[CROSSDOMAIN_KEY].codec
    sid = factory_of(hub).session_id_from_cookie(browser.cookies['main'])
    state = 's' * 32
    # every view that redirects to a ``next`` it was given (the hub's
    # export passes it on to the site's import, which checks it)
    entrances = {
        'push': (SITE + PREFIX + '/begin', {}),
        'push at the hub': (HUB + PREFIX + '/begin', {}),
        'no session at the hub': (SITE + PREFIX + '/import', {'none': '1'}),
        'token': (
            SITE + PREFIX + '/import',
            {'t': codec.mint(sid, HUB, SITE, state=state)},
        ),
    }
    stranger = TestApp(browser.app, extra_environ=browser.extra_environ)
    for entrance, (url, params) in entrances.items():
        res = stranger.get(
            url,
            {'next': next_url, **params},
            headers={'Cookie': f'{STATE_COOKIE}={state}'},
            status=303,
        )
        assert lands_in_the_group(res.location), (entrance, res.location)
        assert not res.location.lower().startswith(('javascript', 'data'))


@pytest.mark.parametrize(
    'path', ['/whoami?next=https://evil.example/', '//evil.example/whoami']
)
def test_the_policy_sends_an_ended_session_to_its_own_login_route(
    redis_url, path
):
    config = make_config(
        redis_url,
        include='pyramid_session_suite.policy',
        **{
            'session_suite.policy.absolute_timeout': '10',
            'session_suite.policy.on_end': 'redirect',
            'session_suite.policy.login_route': 'login',
        },
    )
    app = config.make_wsgi_app()
    browser = TestApp(app)
    browser.get('/login?user=alice')
    app.registry.getUtility(IUserIndex).policy.clock = lambda: (
        time.time() + 3600
    )
    path_info, _, query = path.partition('?')
    environ = {'PATH_INFO': path_info, 'QUERY_STRING': query}
    res = browser.request('/', environ=environ, status=303)
    assert res.location == 'http://localhost/login?session_ended=absolute'


def test_revocations_redirect_to_the_listing_whatever_they_are_sent(
    redis_url,
):
    config = make_config(
        redis_url, **{'session_suite.user_index.views': 'true'}
    )
    browser = TestApp(config.make_wsgi_app())
    browser.get('/login?user=alice')
    token = browser.get('/sessions').forms[0]['csrf_token'].value
    res = browser.post(
        '/sessions/revoke?next=https://evil.example/',
        {'scope': 'others', 'csrf_token': token, 'next': '//evil.example'},
        headers={'Referer': 'https://evil.example/'},
        status=303,
    )
    assert res.location == 'http://localhost/sessions'


# -- oversized cookies -----------------------------------------------------


def test_a_cookie_session_too_big_for_a_browser_is_refused_clearly(caplog):
    def grow(request):
        session = request.session_multi['prefs']
        size = int(request.params['size'])
        if request.params.get('in_place'):
            session.setdefault('notes', []).append('x' * size)
        else:
            session['notes'] = ['x' * size]
        return {'stored': size}

    config = Configurator(
        settings={
            'session_suite.namespaces': 'prefs',
            'session_suite.namespace.prefs.secret': SECRET,
        }
    )
    config.include('pyramid_session_suite')
    config.add_route('grow', '/')
    config.add_view(grow, route_name='grow', renderer='json')
    browser = TestApp(config.make_wsgi_app())
    res = browser.get('/?size=2000')
    [fits] = set_cookies(res, 'prefs')
    assert len(fits.split(';')[0]) <= 4096
    # a write that would make the cookie too big: a clear 413, and the
    # browser keeps the session it had
    res = browser.get('/?size=5000', status=413)
    assert 'session' in res.text and 'Traceback' not in res.text
    assert not set_cookies(res, 'prefs')
    # a value grown in place is found when the cookie is made: not
    # saved, said in the log, never a cookie the browser would drop
    with caplog.at_level(logging.ERROR):
        res = browser.get('/?size=3000&in_place=1', status=200)
    assert not set_cookies(res, 'prefs')
    assert 'too big' in caplog.text
    [cookie] = [c for c in browser.cookiejar if c.name == 'prefs']
    assert cookie.value == fits.split(';')[0].split('=', 1)[1]


def test_an_oversized_cookie_header_is_no_error(redis_url, group):
    app = make_config(redis_url).make_wsgi_app()
    alice = TestApp(app)
    alice.get('/login?user=alice')
    mine = f'main={alice.cookies["main"]}'
    headers = {
        '16 KB in one cookie': f'big={"a" * 16384}; {mine}',
        '100 cookies': '; '.join(
            [f'c{i}={"v" * 150}' for i in range(100)] + [mine]
        ),
        'a value that is not UTF-8': f'x="\\377"; {mine}',
        'the session cookie twice': f'main=junk; {mine}',
    }
    browser, hub, site = group
    for what, header in headers.items():
        res = TestApp(app).get('/whoami', headers={'Cookie': header})
        assert res.json['user'] == 'alice', what
        res = browser.get(SITE + '/page', headers={'Cookie': header})
        assert res.status_int in (200, 303), what


# -- input that cannot be decoded -----------------------------------------


@pytest.mark.parametrize(
    'url',
    [
        SITE + '/page?%ff',
        SITE + PREFIX + '/begin?next=%ff',
        SITE + PREFIX + '/import?none=1&next=%C3%28',
        SITE + PREFIX + '/import?t=%ff',
        HUB + PREFIX + '/export?dst=%ff&state=' + 's' * 32,
    ],
)
def test_a_query_string_that_is_not_utf8_is_no_error(group, url):
    browser, hub, site = group
    stranger = TestApp(browser.app, extra_environ=browser.extra_environ)
    res = stranger.get(url, expect_errors=True)
    assert res.status_int in (200, 303, 400)
    assert not set_cookies(res, 'main')


# -- weak secrets ----------------------------------------------------------

#: every secret setting, and the settings of an application that uses it
SECRETS = {
    'session_suite.namespace.main.secret': ('redis', USER_INDEX),
    'session_suite.namespace.prefs.secret': ('cookie', None),
    'session_suite.user_index.secret': ('redis', USER_INDEX),
    'session_suite.crossdomain.secret': ('redis', 'crossdomain'),
}


def settings_with_secrets(redis_url, include):
    if include == 'crossdomain':
        from .crossdomainapp import site_settings

        return site_settings(redis_url), 'pyramid_session_suite.crossdomain'
    settings = settings_for(redis_url)
    settings['session_suite.namespaces'] = 'main prefs'
    settings['session_suite.namespace.prefs.secret'] = SECRET + '-prefs'
    if include is None:
        del settings['session_suite.user_index.secret']
    return settings, include or 'pyramid_session_suite'


def test_every_secret_setting_is_in_this_test():
    tables = {
        namespaces.NAMESPACE_PREFIX + '<name>.': namespaces.NAMESPACE_SETTINGS,
        user_index.SETTINGS_PREFIX: user_index.USER_INDEX_SETTINGS,
        crossdomain.SETTINGS_PREFIX: crossdomain.CROSSDOMAIN_SETTINGS,
        policy.SETTINGS_PREFIX: policy.POLICY_SETTINGS,
        'session_suite.': core.CORE_SETTINGS,
    }
    secrets = set()
    for prefix, table in tables.items():
        for name, _, default in table:
            if 'secret' in name:
                # no secret has a default: it must be given
                assert default is REQUIRED, prefix + name
                secrets.add(prefix + name)
    tested = {
        re.sub(r'namespace\.\w+\.', 'namespace.<name>.', k) for k in SECRETS
    }
    assert secrets == tested


@pytest.mark.parametrize('key', sorted(SECRETS))
@pytest.mark.parametrize(
    'value, error',
    [
        ('short', 'is too short'),
        ('x' * 31, 'is too short'),
        ('é' * 15, 'is too short'),  # 30 bytes
        ('', 'is required'),
        ('   ', 'is required'),
        (None, 'is required'),
        (f'{"y" * 40} short', 'is too short'),  # a rotated secret too
    ],
)
def test_a_short_or_missing_secret_is_refused_by_name(
    redis_url, key, value, error
):
    _, include = SECRETS[key]
    settings, include = settings_with_secrets(redis_url, include)
    if value is None:
        settings.pop(key, None)
    else:
        settings[key] = value
    with pytest.raises(
        ConfigurationError, match=re.escape(key) + '.*' + error
    ):
        config = Configurator(settings=settings)
        config.include(include)
        config.commit()


def test_the_factories_have_no_default_secret_and_refuse_short_ones(
    redis_url,
):
    with pytest.raises(ValueError):
        RedisSessionFactory(redis_url=redis_url)
    with pytest.raises(TypeError):
        CookieSessionFactory()
    for make in (
        lambda s: RedisSessionFactory(s, redis_url=redis_url),
        lambda s: CookieSessionFactory(s),
        lambda s: TokenCodec([s], [HUB, SITE]),
        lambda s: TokenCodec([XD_SECRET, s], [HUB, SITE]),
    ):
        for weak in ('', 'short', 'x' * 31):
            with pytest.raises(WeakSecret):
                make(weak)
    with pytest.raises(WeakSecret):
        TokenCodec([], [HUB, SITE])


@pytest.mark.parametrize(
    'junk',
    [
        'a' * 16384,
        '=' + 'a' * 16384,
        'x=y ' + 'a' * 16384,
        '"' + 'a' * 16384,
    ],
    ids=['name run', 'leading =', 'after a space', 'open quote'],
)
def test_a_header_that_webob_parses_in_quadratic_time_is_defused(junk):
    from webob import Request

    from pyramid_session_suite._request_cookies import readable_cookies

    request = Request.blank('/')
    request.environ['HTTP_COOKIE'] = f'main=abc.def; {junk}; prefs="x"'
    assert dict(readable_cookies(request)) == {'main': 'abc.def', 'prefs': 'x'}
    # what WebOb parses holds only well-formed cookies: no long run of
    # name characters without "="
    assert request.environ['HTTP_COOKIE'] == 'main=abc.def; prefs="x"'


def test_short_headers_are_read_as_webob_reads_them():
    from webob import Request

    from pyramid_session_suite._request_cookies import readable_cookies

    header = 'a=1; junk; b="x; y"; c'
    request = Request.blank('/')
    request.environ['HTTP_COOKIE'] = header
    assert dict(readable_cookies(request)) == {'a': '1', 'b': 'x; y'}
    assert request.environ['HTTP_COOKIE'] == header
