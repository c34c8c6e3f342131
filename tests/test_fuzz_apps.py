"""Hostile requests, generated, against the real applications and a real
Redis: whatever arrives in the Host header, the cookies, the query string
or the body, the answer is never a 5xx nor a traceback; a refused request
(4xx) changes nothing in Redis and sets no session cookie; nothing is
accepted that should not be (a forged cookie, a missing CSRF token, a
token that was not made for this browser and this site).

The routes come from the applications' introspector: a route added to the
user index views or to the cross-domain flows is fuzzed without a change
here."""

import json
import re
import time
from urllib.parse import quote, urlsplit
from hypothesis import HealthCheck, given, settings, strategies as st
from pyramid.csrf import get_csrf_token
import pytest
from webob.cookies import parse_cookie
from webtest import TestApp, TestRequest

from pyramid_session_suite import RedisSessionFactory
from pyramid_session_suite.crossdomain import CROSSDOMAIN_KEY
from pyramid_session_suite.crossdomain.tokens import TokenCodec
from pyramid_session_suite.crossdomain.views import STATE_COOKIE, TRIED_COOKIE
from pyramid_session_suite.interfaces import ISessionMultiManagerConfig
from pyramid_session_suite.redis import stored
from pyramid_session_suite.redis.login_records import (
    matches,
    own_records,
    split_id,
)

from .conftest import SECRET
from .crossdomainapp import HUB, SITE, XD_SECRET, make_site
from .usersapp import FIREFOX, make_config

fuzz = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

#: for the tests that send each example to several routes
focused = settings(fuzz, max_examples=250)

pytestmark = pytest.mark.filterwarnings('ignore:http.cookiejar bug')

COOKIE = 'main'
PEOPLE = ('alice', 'alice2', 'admin')
CLAIMS = b'session_suite:xd:jti:'
METHODS = ('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS')
TRACEBACK = re.compile(r'Traceback \(most recent call last\)|File "[^"]+"')


# -- what any answer must be -----------------------------------------------


def snapshot(client):
    """Every key and its serialized value (not its TTL: reads refresh
    TTLs, and that is no change)."""
    keys = sorted(client.keys('*'))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.dump(key)
    return dict(zip(keys, pipe.execute(), strict=True))


def set_cookies(res):
    """``{name: (value, header)}`` of the response's ``Set-Cookie``."""
    found = {}
    for header in res.headers.getall('Set-Cookie'):
        name, _, rest = header.partition('=')
        found[name] = (rest.split(';', 1)[0], header)
    return found


def deletes(header):
    value = header.partition('=')[2].split(';', 1)[0]
    return value in ('', '""') and 'Max-Age=0' in header


def check_answer(res, before, after, ignore=()):
    """No server error, no traceback; a refusal changes nothing."""
    assert res.status_int < 500, res.text[:2000]
    assert not TRACEBACK.search(res.text)
    if 400 <= res.status_int < 500:
        changed = {
            key
            for key in set(before) | set(after)
            if before.get(key) != after.get(key) and not key.startswith(ignore)
        }
        assert not changed, f'a {res.status} changed {sorted(changed)}'
        for _, header in set_cookies(res).values():
            assert deletes(header), f'a {res.status} set {header}'


def effective_cookie(header, name=COOKIE):
    """The value of ``name`` the application reads from a Cookie header:
    the last one that is UTF-8."""
    value = None
    for key, raw in parse_cookie(header):
        if key == name.encode():
            try:
                value = raw.decode('utf-8')
            except UnicodeDecodeError:
                continue
    return value


# -- generated pieces of requests ------------------------------------------

latin1 = st.binary(max_size=300).map(lambda b: b.decode('latin-1'))
text = st.text(max_size=200)
#: a value that is utf-8 text, raw bytes, or bytes that are not utf-8
values = (
    text
    | latin1
    | st.sampled_from(['', ' ', '%ff', '\x00', '"', ';', '\\', 'x' * 3000])
)
hostile_urls = st.sampled_from(
    [
        '//evil.com/x',
        'https://evil.com',
        '/\\evil.com',
        '\\\\evil.com',
        'javascript:alert(1)',
        'JaVaScRiPt:alert(1)',
        'data:text/html,<script>alert(1)</script>',
        'http://www.site-a.test.evil.com/',
        'https://www.site-a.test@evil.com/',
        'https://evil.com/?https://www.site-a.test',
        '%2F%2Fevil.com',
        '/%2F/evil.com',
        '/\t/evil.com',
        '/\r\nSet-Cookie: x=1',
        '/\x00//evil.com',
        '/\x0b',
        '/\u2603',
        'https://www.site-b.test/\u2603',
        'https://www.site-b.test:99999/',
        'https://[::1/',
        'http://www.site-b.test/x',
        '/page?x=1#y',
        '/',
        '',
    ]
)


def printable(header):
    """What an HTTP server passes on: no control characters."""
    return all(32 <= ord(c) != 127 for c in header)


hosts = st.sampled_from(
    [
        None,
        '',
        'evil.com',
        'a.test:99999',
        'a.test:',
        'a.test:abc',
        '[::1',
        '[::1]:8080',
        'www.site-a.test',
        'www.site-b.test',
        'www.site-b.test:443',
        'www.site-b.test:80',
        'www.site-b.test.evil.com',
        'WWW.SITE-B.TEST',
        'www.s\u00efte-b.test',
        'x' * 10000,
    ]
) | latin1.map(lambda h: ''.join(c for c in h if printable(c)))
accepts = (
    st.sampled_from(
        [
            None,
            'application/json',
            'text/html',
            'application/json, */*',
            '*/*;q=0.1, application/json;q=abc',
            'text/html;q=2',
            ';;;,,,',
        ]
    )
    | latin1
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.just(10**400),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(['handle', 'scope', 'csrf_token', 'x']) | text,
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
json_bodies = st.one_of(
    json_values.map(lambda value: json.dumps(value).encode()),
    st.builds(
        lambda handle, scope: json.dumps(
            {k: v for k, v in (('handle', handle), ('scope', scope)) if v}
        ).encode(),
        st.sampled_from([None, 'HANDLE', 'OTHER', 'x' * 22]) | json_values,
        st.sampled_from([None, 'all', 'others', 'ALL']) | json_values,
    ),
    st.sampled_from(
        [
            b'',
            b'{',
            b'[' * 5000,
            b'{"handle": 1e99999}',
            b'{"scope": "all", "scope": "others"}',
            b'\xff\xfe{}',
            b'"\\ud800"',
            b'{"handle": "' + b'9' * 100000 + b'"}',
        ]
    ),
    st.binary(max_size=300),
)
form_fields = st.lists(
    st.tuples(
        st.sampled_from(['handle', 'scope', 'csrf_token', 'x']) | text,
        st.sampled_from(['HANDLE', 'OTHER', 'all', 'others', 'TOKEN', '%ff'])
        | values,
    ),
    max_size=5,
)
json_types = st.sampled_from(
    [
        'application/json',
        'application/json; charset=utf-8',
        'application/json; charset=latin-1',
        'application/json; charset=bogus',
    ]
)
form_types = st.sampled_from(
    [
        'application/x-www-form-urlencoded',
        'application/x-www-form-urlencoded; charset=utf-8',
        None,
        'text/plain',
    ]
)


def encode_form(fields):
    return '&'.join(
        f'{quote(k.encode("utf-8", "surrogatepass"))}='
        f'{quote(v.encode("utf-8", "surrogatepass"))}'.replace('%25ff', '%ff')
        for k, v in fields
    ).encode('ascii')


def multipart(fields):
    boundary = 'fuzzboundary'
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
        f'{v}\r\n'
        for k, v in fields
    ]
    body = (''.join(parts) + f'--{boundary}--\r\n').encode(
        'utf-8', 'surrogatepass'
    )
    return body, f'multipart/form-data; boundary={boundary}'


bodies = st.one_of(
    st.tuples(json_bodies, json_types),
    st.tuples(form_fields.map(encode_form), form_types),
    form_fields.map(multipart),
    st.tuples(st.binary(max_size=500), st.none() | latin1),
)


def path_of(pattern, values):
    """``pattern`` with its ``{placeholders}`` filled (percent-encoded)."""
    return re.sub(
        r'\{(\w+)\}',
        lambda m: quote(values[m.group(1)].encode('utf-8'), safe=''),
        pattern,
    )


def routes_of(app):
    """``(name, pattern, methods, changes)`` of every route of this package
    (``session_suite.*``), from the introspector; ``changes``: a view of
    the route takes a method other than GET, so it may change something
    (and needs the CSRF token)."""
    found = []
    for route in app.registry.introspector.get_category('routes'):
        intr = route['introspectable']
        if not intr['name'].startswith('session_suite.'):
            continue
        methods = set()
        for view in route['related']:
            if view.category_name != 'views' or view['exception_only']:
                continue
            declared = view['request_methods'] or METHODS
            methods.update(
                [declared] if isinstance(declared, str) else declared
            )
        changes = not methods <= {'GET', 'HEAD'}
        found.append((intr['name'], intr['pattern'], sorted(methods), changes))
    return sorted(found)


def client(app):
    return TestApp(app, lint=True)


def send(browser, method, path, query, host, scheme, headers, body=None):
    """One request through WebTest, the Cookie header exactly as given."""
    environ = {'wsgi.url_scheme': scheme}
    if host is not None:
        environ['HTTP_HOST'] = host
    url = path + ('?' + query if query else '')
    headers = {k: v for k, v in headers.items() if v is not None}
    request = TestRequest.blank(url, environ, method=method, headers=headers)
    if body:
        request.body = body
    browser.cookiejar.clear()
    return browser.do_request(request, status='*', expect_errors=True)


def encode_query(pairs):
    return '&'.join(
        f'{quote(k.encode("utf-8", "surrogatepass"))}='
        + (
            v[4:]  # raw: already percent-encoded, maybe not utf-8
            if v.startswith('raw:')
            else quote(v.encode('utf-8', 'surrogatepass'), safe='')
        )
        for k, v in pairs
    )


raw_values = st.sampled_from(['raw:%ff', 'raw:%C3%28', 'raw:%', 'raw:%zz'])


# -- cookies ---------------------------------------------------------------


def cookie_header(people, pieces, factory):
    """The Cookie header of symbolic ``pieces``, made real: a person's
    cookie, or a forgery: a real session id signed for another cookie
    name, unsigned, or a signed id that Redis does not hold."""
    other = RedisSessionFactory(
        SECRET,
        redis_client=factory.redis,
        cookie_name='other',
        key_prefix=factory.key_prefix,
    )
    out = []
    for kind, arg in pieces:
        if arg in PEOPLE and arg not in people:
            arg = 'alice'
        if kind == 'session':
            out.append(f'{COOKIE}={people[arg]["cookie"]}')
        elif kind == 'other-namespace':
            signed = other.cookie_signer.dumps(people[arg]['sid'])
            out.append(f'{COOKIE}={signed.decode()}')
        elif kind == 'unsigned':
            out.append(f'{COOKIE}={people[arg]["sid"]}')
        elif kind == 'unknown-id':
            sid = factory.new_session_id()
            if arg == 'outside-prefix':
                sid = 'session:' + sid[len(factory.key_prefix) :]
            out.append(f'{COOKIE}={factory.cookie_signer.dumps(sid).decode()}')
        elif kind == 'raw':
            out.append(f'{arg[0]}={arg[1]}')
        elif kind == 'big':
            out.append('big=' + 'a' * arg)
        else:  # many
            out.extend(f'c{i}={"v" * 40}' for i in range(arg))
    # as a server hands it over: the header's bytes, as latin-1
    return '; '.join(out).encode('utf-8', 'surrogatepass').decode('latin-1')


junk_cookies = st.one_of(
    st.tuples(
        st.sampled_from(['other-namespace', 'unsigned']),
        st.sampled_from(['alice', 'admin']),
    ),
    st.tuples(
        st.just('unknown-id'), st.sampled_from(['in-prefix', 'outside-prefix'])
    ),
    st.tuples(
        st.just('raw'),
        st.tuples(
            st.sampled_from([COOKIE, 'x', '$Version', '']) | text,
            values | st.sampled_from(['"\\377"', '"\\"', '"']),
        ),
    ),
    st.tuples(st.just('many'), st.integers(50, 150)),
    st.tuples(st.just('big'), st.integers(3000, 4100)),
)


def cookie_pieces(people):
    """Junk, then maybe someone's real cookie, then junk."""
    return st.builds(
        lambda before, who, after: (
            before + ([('session', who)] if who else []) + after
        ),
        st.lists(junk_cookies, max_size=2),
        st.sampled_from([None, *people]),
        st.just([]) | st.lists(junk_cookies, max_size=1),
    )


# -- the user index views --------------------------------------------------


def token_view(request):
    return {'token': get_csrf_token(request)}


def alive(client, session_id):
    """Whether Redis holds the live session of ``session_id``, a user's:
    its key holds a stored session (not ended) made for its secret."""
    key, secret = split_id(session_id)
    assert secret is not None, session_id
    value = client.get(key)
    if value is None or not stored.is_stored_session(value):
        return False
    return matches(own_records(stored.unpack(value)[1]), secret)


class Users:
    """The user index application (views, policy), its routes, and three
    signed-in browsers: alice twice, and admin."""

    environ = {'HTTP_USER_AGENT': FIREFOX, 'REMOTE_ADDR': '198.51.100.7'}

    def __init__(self, redis_url, redis_client):
        config = make_config(
            redis_url,
            include='pyramid_session_suite.policy',
            **{
                'session_suite.user_index.views': 'true',
                'session_suite.policy.max_sessions': '0',
            },
        )
        config.add_route('token', '/token')
        config.add_view(token_view, route_name='token', renderer='json')
        self.app = config.make_wsgi_app()
        self.browser = client(self.app)
        self.redis = redis_client
        self.routes = routes_of(self.app)
        manager = self.app.registry.getUtility(ISessionMultiManagerConfig)
        self.factory = manager.get_namespace_config(COOKIE)
        self.people = {}
        for who in PEOPLE:
            self.sign_in(who)

    def sign_in(self, who):
        browser = client(self.app)
        user = who.rstrip('2')
        browser.get(f'/login?user={user}', extra_environ=self.environ)
        cookie = browser.cookies[COOKIE]
        self.people[who] = {
            'user': user,
            'cookie': cookie,
            'sid': self.factory.session_id_from_cookie(cookie),
            'token': browser.get('/token').json['token'],
            'handle': browser.get('/mine').json['current'],
        }

    def ensure_signed_in(self):
        """Sign in again whoever a previous request signed out."""
        for who, person in list(self.people.items()):
            if not alive(self.redis, person['sid']):
                self.sign_in(who)

    def who_has(self, cookie):
        for who, person in self.people.items():
            if person['cookie'] == cookie:
                return who
        return None


@pytest.fixture
def users(redis_url, redis_client):
    return Users(redis_url, redis_client)


revocations = st.sampled_from(
    [
        [('handle', 'OTHER')],
        [('handle', 'HANDLE')],
        [('handle', 'ADMIN')],
        [('scope', 'others')],
        [('scope', 'all')],
    ]
)
revocation_fields = revocations | st.lists(
    st.tuples(
        st.sampled_from(['handle', 'scope']),
        st.sampled_from(['HANDLE', 'OTHER', 'ADMIN', 'all', 'others'])
        | values,
    ),
    max_size=3,
)
#: JSON and form bodies that a careless parser would choke on
NASTY_BODIES = [
    (b'[' * 5000, 'application/json'),
    (b'{"scope": "all"}', 'application/json; charset=bogus'),
    (b'\xff\xfe{}', 'application/json'),
    (b'{"handle": NaN}', 'application/json'),
    (b'{"handle": 1e99999}', 'application/json'),
    (b'{"handle": ' + b'9' * 5000 + b'}', 'application/json'),
    (b'{"handle": null, "scope": null}', 'application/json'),
    (b'{"handle": ["HANDLE"]}', 'application/json'),
    (b'{"handle": {"$ne": null}}', 'application/json'),
    (b'{"scope": 1}', 'application/json'),
    (b'{"scope": "all", "scope": "others"}', 'application/json'),
    (b'"all"', 'application/json'),
    (b'[["scope", "all"]]', 'application/json'),
    (b'', 'application/json'),
    (b'scope=all', 'multipart/form-data'),
    (b'--x\r\n\r\n', 'multipart/form-data; boundary=x'),
    (b'scope=%ff', 'application/x-www-form-urlencoded'),
    (b'scope=all', 'application/x-www-form-urlencoded; charset=bogus'),
    (b'handle=HANDLE&handle=OTHER', 'application/x-www-form-urlencoded'),
    (b'handle=HANDLE&scope=all', 'application/x-www-form-urlencoded'),
    (b'handle=' + b'A' * 100000, 'application/x-www-form-urlencoded'),
    (b'scope=all', 'text/plain'),
    (b'scope=all', None),
]
user_index_bodies = st.one_of(
    st.sampled_from(NASTY_BODIES),
    st.tuples(revocation_fields.map(encode_form), form_types),
    st.tuples(
        revocation_fields.map(lambda f: json.dumps(dict(f)).encode()),
        json_types,
    ),
    bodies,
)
CSRF = [('header', 'own'), ('field', 'own')] * 6 + [
    ('none', ''),
    ('header', 'other'),
    ('field', 'other'),
    ('header', 'junk'),
    ('field', 'junk'),
    ('both', 'junk-header'),
]


@st.composite
def user_index_requests(draw, routes, right=False):
    """A request to one of ``routes``: anything; or, half of the time (or
    with ``right``), the right request (someone's cookie, their token, a
    handle or a scope) with one part, at most, made wrong."""
    name, pattern, methods, changes = draw(st.sampled_from(routes))
    userid = draw(
        st.sampled_from(['alice', 'admin', 'nobody', '{x}', '..', 'a%2Fb'])
        | st.text(
            st.characters(blacklist_characters='/', codec='utf-8'),
            min_size=1,
            max_size=60,
        )
    )
    req = {
        'route': name,
        'wrong': 'unknown',
        'changes': changes,
        'path': path_of(pattern, {'userid': userid}),
        'method': draw(st.sampled_from(methods * 6 + list(METHODS))),
        'host': draw(hosts),
        'scheme': draw(st.sampled_from(['http', 'https'])),
        'cookies': draw(cookie_pieces(PEOPLE)),
        'csrf': draw(st.sampled_from(CSRF)),
        'body': draw(user_index_bodies),
        'accept': draw(accepts),
        'origin': draw(
            st.sampled_from([None, 'http://localhost', 'https://evil.com'])
        ),
        'query': draw(
            st.lists(st.tuples(text, values | raw_values), max_size=3)
        ),
    }
    if right or draw(st.booleans()):
        fields = draw(revocations)
        who = draw(st.sampled_from(PEOPLE))
        req.update(
            {
                'method': methods[0],
                'host': None,
                'scheme': 'http',
                'who': who,
                'own': fields[0][1] in ('HANDLE', 'all', 'others')
                or fields[0][1] == {'admin': 'ADMIN'}.get(who, 'OTHER'),
                'cookies': [('session', who)],
                'csrf': ('header', 'own'),
                'body': (
                    encode_form(fields),
                    'application/x-www-form-urlencoded',
                ),
                'origin': None,
                'query': [],
            }
        )
        # then one part, at most, is wrong: each defense alone must hold
        part = draw(st.sampled_from([None, 'csrf', 'cookies', *sorted(WRONG)]))
        if part is not None:
            req[part] = draw(WRONG[part])
        req['wrong'] = part
    return req


#: what may be wrong in a right request
WRONG = {
    'method': st.sampled_from([m for m in METHODS if m != 'POST']),
    'host': hosts,
    'scheme': st.just('https'),
    'cookies': st.lists(junk_cookies, min_size=1, max_size=3)
    | cookie_pieces(PEOPLE),
    'csrf': st.sampled_from([c for c in CSRF if c[1] != 'own']),
    'body': user_index_bodies,
    'origin': st.sampled_from(['https://evil.com', 'null']),
    'query': st.lists(st.tuples(text, values | raw_values), max_size=3),
}


def resolve_body(users, body, who):
    """The body, with symbolic handles and tokens made real."""
    person = users.people[who or 'alice']
    other = users.people['alice2' if who != 'alice2' else 'alice']
    for symbol, real in (
        (b'HANDLE', person['handle']),
        (b'OTHER', other['handle']),
        (b'ADMIN', users.people['admin']['handle']),
    ):
        body = body.replace(symbol, real.encode())
    return body


@fuzz
@given(data=st.data())
def test_the_user_index_views_survive_hostile_requests(users, data):
    check_user_index(users, data.draw(user_index_requests(users.routes)))


@focused
@given(data=st.data())
def test_a_revocation_goes_through_only_when_all_is_right(users, data):
    posts = [route for route in users.routes if route[3]]
    assert posts  # the revocations
    shape = data.draw(user_index_requests(posts, right=True))
    for name, pattern, _, changes in posts:
        # the same request, to each of them
        path = path_of(pattern, {'userid': 'admin'})
        req = dict(shape, route=name, path=path, changes=changes)
        res = check_user_index(users, req)
        if req['wrong'] in ('csrf', 'method', 'scheme'):
            # the token; a POST; over https, an Origin that matches
            assert res.status_int >= 400
        elif req['wrong'] is None and name.endswith('.sessions.revoke'):
            # a session of one's own: ended; another user's: not found
            expected = (200, 303) if req['own'] else (404,)
            assert res.status_int in expected


def check_user_index(users, req):
    """Send ``req``; check what any answer must be and what it may
    accept; return the response."""
    users.ensure_signed_in()
    cookie = cookie_header(users.people, req['cookies'], users.factory)
    who = users.who_has(effective_cookie(cookie))
    person = users.people[who] if who else None
    body, content_type = req['body']
    body = resolve_body(users, body, who)
    headers = {
        'Cookie': cookie or None,
        'Accept': req['accept'],
        'Origin': req['origin'],
        'Content-Type': content_type,
    }
    where, whose = req['csrf']
    token = {
        'own': person['token'] if person else 'no-session',
        'other': users.people['admin' if who != 'admin' else 'alice']['token'],
    }.get(whose, 'junk')
    if where == 'header':
        headers['X-CSRF-Token'] = token
    elif where == 'field':
        body = b'csrf_token=' + token.encode() + (b'&' + body if body else b'')
        headers['Content-Type'] = 'application/x-www-form-urlencoded'
    elif where == 'both':
        headers['X-CSRF-Token'] = 'junk'
        body = b'csrf_token=' + token.encode()
        headers['Content-Type'] = 'application/x-www-form-urlencoded'
    before = snapshot(users.redis)
    res = send(
        users.browser,
        req['method'],
        req['path'],
        encode_query(req['query']),
        req['host'],
        req['scheme'],
        headers,
        body,
    )
    after = snapshot(users.redis)
    check_answer(res, before, after)
    sent = headers.get('X-CSRF-Token') or (token if where == 'field' else '')
    if req['changes'] and req['method'] not in ('GET', 'HEAD'):
        if person is None or sent != person['token']:
            assert res.status_int >= 400, 'a POST without its token'
    if req['route'].startswith('session_suite.admin') and who != 'admin':
        assert res.status_int >= 400, 'an admin page for a non-admin'
    if who != 'admin':
        # nobody but admin ends admin's session
        assert alive(users.redis, users.people['admin']['sid'])
    if req['route'] == 'session_suite.sessions' and req['method'] == 'GET':
        if person is None:
            assert res.status_int == 403
        elif res.content_type == 'application/json':
            assert res.json['userid'] == person['user']
            assert res.json['current'] == person['handle']
    return res


# -- the cross-domain flows ------------------------------------------------


class Sites:
    """The hub and a site of the group, each served on its own (the Host
    header is whatever the client says), and alice signed in at the
    hub."""

    def __init__(self, redis_url, redis_client):
        self.apps = {
            HUB: make_site(redis_url, flows='redirect push script'),
            SITE: make_site(redis_url, flows='redirect push script'),
        }
        self.browsers = {site: client(app) for site, app in self.apps.items()}
        self.redis = redis_client
        self.group = self.apps[HUB].registry[CROSSDOMAIN_KEY]
        self.factory = self.group.factory
        self.routes = routes_of(self.apps[SITE])
        # a page of the application: the pull flow's tween and the loader
        self.routes.append(('page', '/page', ['GET'], False))
        self.people = {}
        self.sign_in()
        self.spent = self.spend()

    def spend(self):
        """A token for the site, redeemed once already."""
        token = self.group.codec.mint(
            self.people['alice']['sid'], HUB, SITE, state=STATE
        )
        client(self.apps[SITE]).get(
            '/_session_suite/xd/import',
            {'t': token, 'next': '/'},
            headers={'Cookie': f'{STATE_COOKIE}={STATE}'},
            extra_environ={
                'HTTP_HOST': netloc(SITE),
                'wsgi.url_scheme': 'https',
            },
            status=303,
        )
        return token

    def sign_in(self):
        browser = client(self.apps[HUB])
        environ = {'HTTP_HOST': netloc(HUB), 'wsgi.url_scheme': 'https'}
        browser.get('/login?user=alice', extra_environ=environ)
        cookie = browser.cookies[COOKIE]
        sid = self.factory.session_id_from_cookie(cookie)
        self.people['alice'] = {'cookie': cookie, 'sid': sid}

    def ensure_signed_in(self):
        if not self.redis.exists(self.people['alice']['sid']):
            self.sign_in()


@pytest.fixture
def sites(redis_url, redis_client):
    return Sites(redis_url, redis_client)


def netloc(url):
    return urlsplit(url).netloc


STATE = 's' * 32
FLOWS = {
    'session_suite.crossdomain.import': 'redirect',
    'session_suite.crossdomain.script': 'script',
}
#: ``(kind, dst, src, flow, session, state)``: a token the hub makes
tokens = st.tuples(
    st.just('minted'),
    st.sampled_from([SITE, HUB, 'https://evil.com']),
    st.sampled_from([HUB, SITE]),
    st.sampled_from(['redirect', 'script']),
    st.sampled_from(['alice', 'gone']),
    st.sampled_from([STATE, None, 't' * 32]),
) | st.tuples(st.just('text'), values)


MUTATIONS = (
    'other-destination',
    'from-itself',
    'other-flow',
    'gone',
    'other-state',
    'no-state',
    'expired',
    'from-the-future',
    'bit-flipped',
    'replayed',
)


def token_facts(spec, route, site):
    """What a symbolic token holds: ``None`` for text; else ``dst``,
    ``src``, ``flow``, ``who``, ``state`` and its ``mutation`` of the
    right token of ``route`` on ``site``, if any."""
    if spec[0] == 'text':
        return None
    if spec[0] == 'minted':
        _, dst, src, flow, who, state = spec
        return {
            'dst': dst,
            'src': src,
            'flow': flow,
            'who': who,
            'state': state,
        }
    mutation = spec[1]
    flow = FLOWS.get(route, 'redirect')
    dst, src = site, HUB if site == SITE else SITE
    if mutation == 'other-destination':
        dst = src
    if mutation == 'from-itself':
        src = dst
    if mutation == 'other-flow':
        flow = 'script' if flow == 'redirect' else 'redirect'
    state = {'other-state': 't' * 32, 'no-state': None}.get(mutation, STATE)
    who = 'gone' if mutation == 'gone' else 'alice'
    facts = {'dst': dst, 'src': src, 'flow': flow, 'who': who}
    return dict(facts, state=state, mutation=mutation)


def opens(facts, route, site, state):
    """Whether a token holding ``facts`` hands a session over on
    ``route`` of ``site`` to a browser whose state cookie is ``state``."""
    return (
        facts is not None
        and facts['who'] == 'alice'
        and facts.get('mutation')
        not in ('expired', 'from-the-future', 'bit-flipped', 'replayed')
        and facts['dst'] == site
        and facts['src'] != site
        and facts['flow'] == FLOWS[route]
        and (
            facts['flow'] == 'script'
            or bool(state)
            and facts['state'] == state
        )
    )


def mint(sites, spec, route, site):
    """The token of a symbolic ``spec``, as the hub would make it."""
    facts = token_facts(spec, route, site)
    if facts is None:
        return spec[1]
    mutation = facts.get('mutation')
    if mutation == 'replayed':
        return sites.spent
    sid = sites.people['alice']['sid']
    if facts['who'] == 'gone':
        sid = sites.factory.new_session_id()
    codec = sites.group.codec
    if mutation in ('expired', 'from-the-future'):
        shift = -120 if mutation == 'expired' else 120
        codec = TokenCodec(
            [XD_SECRET], codec.sites, clock=lambda: time.time() + shift
        )
    token = codec.mint(
        sid,
        facts['src'],
        facts['dst'],
        state=facts['state'],
        flow=facts['flow'],
    )
    if mutation == 'bit-flipped':
        token = token[:20] + ('A' if token[20] != 'A' else 'B') + token[21:]
    return token


def host_url_of(host, scheme):
    """``request.host_url`` of a request with this Host header."""
    environ = {'wsgi.url_scheme': scheme}
    if host is not None:
        environ['HTTP_HOST'] = host
    return TestRequest.blank('/', environ).host_url


query_keys = st.sampled_from(
    ['next', 'dst', 'state', 't', 'none', 'session_suite_xd']
)
xd_junk_cookies = st.one_of(
    junk_cookies,
    st.tuples(
        st.just('raw'),
        st.tuples(
            st.sampled_from([STATE_COOKIE, TRIED_COOKIE]),
            st.sampled_from([STATE, '1', 't' * 32]) | values,
        ),
    ),
)


@st.composite
def crossdomain_requests(draw, routes, right=False):
    """A request to one of ``routes``: anything; or, half of the time (or
    with ``right``), the right request of the flow (token, state cookie,
    host, scheme, headers) with one part, at most, made wrong."""
    name, pattern, methods, _ = draw(st.sampled_from(routes))
    site = draw(st.sampled_from([HUB, SITE]))
    other = HUB if site == SITE else SITE
    req = {
        'route': name,
        'wrong': 'unknown',
        'site': site,
        'path': pattern,
        'method': draw(st.sampled_from(methods * 6 + list(METHODS))),
        'host': draw(st.sampled_from(['own', 'other']) | hosts),
        'scheme': draw(st.sampled_from(['https', 'http'])),
        'token': draw(tokens),
        'query': draw(
            st.lists(
                st.tuples(
                    query_keys | text,
                    hostile_urls
                    | values
                    | raw_values
                    | st.sampled_from([SITE, HUB, STATE, '1', 'TOKEN']),
                ),
                max_size=5,
            )
        ),
        'cookies': draw(
            st.builds(
                lambda a, who, b: a + ([('session', who)] if who else []) + b,
                st.lists(xd_junk_cookies, max_size=2),
                st.sampled_from([None, 'alice']),
                st.lists(xd_junk_cookies, max_size=2),
            )
        ),
        'accept': draw(accepts | st.just('text/html')),
        'fetch_mode': draw(st.sampled_from([None, 'navigate', 'cors'])),
        'fetch_dest': draw(st.sampled_from([None, 'script', 'image'])),
        'referer': draw(st.sampled_from([None, HUB + '/page', 'x']) | latin1),
        'xhr': draw(st.booleans()),
        'body': draw(st.none() | st.binary(max_size=100)),
    }
    if right or draw(st.booleans()):
        req.update(right_request(name, site, other))
        # then one part, at most, is wrong: each defense alone must hold
        parts = [None, 'token', 'cookies', 'next', 'referer', *sorted(RIGHT)]
        part = draw(st.sampled_from(parts + ['next']))
        if part == 'next':  # the right query, but for ``next``
            url = draw(hostile_urls)
            req['query'] = [
                (k, url if k == 'next' else v) for k, v in req['query']
            ]
        elif part is not None:
            req[part] = draw(RIGHT[part])
        req['wrong'] = part
    return req


def right_request(route, site, other):
    """The request a browser makes on ``route`` of ``site`` in a flow."""
    flow = FLOWS.get(route, 'redirect')
    right = {
        'method': 'GET',
        'host': 'own',
        'scheme': 'https',
        'token': ('minted', site, other, flow, 'alice', STATE),
        'query': [('next', '/page'), ('t', 'TOKEN')],
        'cookies': [('raw', (STATE_COOKIE, STATE))],
        'accept': 'text/html',
        'fetch_mode': 'navigate',
        'fetch_dest': 'script',
        'referer': other + '/page',
        'xhr': False,
    }
    if route.endswith('.export'):
        right['site'] = HUB
        right['query'] = [('dst', SITE), ('state', STATE), ('next', '/')]
        right['cookies'] = [('session', 'alice')]
    elif route.endswith('.begin'):
        right['query'] = [('next', HUB + '/page')]
        right['cookies'] = []
    elif route == 'page':
        right['cookies'] = [('session', 'alice')] if site == HUB else []
    return right


#: what may replace a part of a right request
RIGHT = {
    'method': st.sampled_from(['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']),
    'host': hosts,
    'scheme': st.just('http'),
    'token': st.tuples(st.just('mutated'), st.sampled_from(MUTATIONS))
    | tokens,
    'query': st.lists(st.tuples(query_keys, values | hostile_urls)),
    'cookies': st.lists(xd_junk_cookies, max_size=3),
    'accept': accepts,
    'fetch_mode': st.just('cors'),
    'fetch_dest': st.sampled_from(['image', 'iframe']),
    'referer': st.sampled_from([SITE + '/', 'x']) | latin1,
    'xhr': st.just(True),
}


@fuzz
@given(data=st.data())
def test_the_crossdomain_flows_survive_hostile_requests(sites, data):
    check_crossdomain(sites, data.draw(crossdomain_requests(sites.routes)))


@fuzz
@given(data=st.data())
def test_a_session_is_handed_over_only_when_all_is_right(sites, data):
    req = data.draw(crossdomain_requests(sites.routes, right=True))
    res = check_crossdomain(sites, req)  # where it redirects, too
    if req['route'] not in FLOWS:
        return
    adopted = set_cookies(res).get(COOKIE)
    facts = token_facts(req['token'], req['route'], req['site'])
    needed = ['method', 'scheme']
    if req['route'].endswith('.script'):
        # loaded as a script, by a page of the site that made the token
        needed.append('fetch_dest')
        source = '/'.join((req['referer'] or '').split('/')[:3])
        if facts is None or source != facts['src']:
            needed.append('referer')
    state = effective_cookie(req['cookie_header'], STATE_COOKIE)
    if req['route'].endswith('.import') and state != STATE:
        needed.append('cookies')  # the state cookie of this browser
    if not opens(facts, req['route'], req['site'], STATE):
        needed.append('token')
    if host_url_of(req['host'], 'https') != req['site']:
        needed.append('host')
    if req['wrong'] in needed:
        assert not adopted or deletes(adopted[1])
    elif req['wrong'] is None:
        assert adopted and not deletes(adopted[1])


def check_crossdomain(sites, req):
    """Send ``req``; check what any answer must be and what it may
    accept; return the response."""
    sites.ensure_signed_in()
    site = req['site']
    host = {
        'own': netloc(site),
        'other': netloc(HUB if site == SITE else SITE),
    }.get(req['host'], req['host'])
    req['host'] = host
    token = mint(sites, req['token'], req['route'], site)
    quoted = quote(token.encode('utf-8', 'surrogatepass'), safe='')
    path = path_of(req['path'], {'token': 'TOKEN'}).replace('TOKEN', quoted)
    query = [(k, token if v == 'TOKEN' else v) for k, v in req['query']]
    cookie = cookie_header(sites.people, req['cookies'], sites.factory)
    req['cookie_header'] = cookie
    headers = {
        'Cookie': cookie or None,
        'Accept': req['accept'],
        'Sec-Fetch-Mode': req['fetch_mode'],
        'Sec-Fetch-Dest': req['fetch_dest'],
        'Referer': req['referer'],
        'X-Requested-With': 'XMLHttpRequest' if req['xhr'] else None,
    }
    before = snapshot(sites.redis)
    res = send(
        sites.browsers[site],
        req['method'],
        path,
        encode_query(query),
        host,
        req['scheme'],
        headers,
        req['body'],
    )
    after = snapshot(sites.redis)
    # a redemption that gets as far as the claim spends the token
    check_answer(res, before, after, ignore=CLAIMS)
    if res.status_int in (301, 302, 303, 307, 308):
        location = res.headers['Location']
        assert urlsplit(location).scheme in ('http', 'https')
        allowed = {netloc(HUB), netloc(SITE), host, 'localhost:80'}
        assert netloc(location) in allowed, location
    adopted = set_cookies(res).get(COOKIE)
    if adopted and not deletes(adopted[1]):
        # a session is handed over only by a token made for this site,
        # by another site of the group, for this browser, once
        facts = token_facts(req['token'], req['route'], site)
        state = effective_cookie(cookie, STATE_COOKIE)
        assert opens(facts, req['route'], site, state)
        assert host_url_of(host, req['scheme']) == site
    if (
        req['route'] == 'page'
        and req['method'] == 'GET'
        and res.status_int == 200
    ):
        signed_in = effective_cookie(cookie) == sites.people['alice']['cookie']
        assert ('<p id="user">alice</p>' in res.text) == signed_in
    return res
