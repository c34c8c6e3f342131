"""The targets: ``name(data)`` for bytes from the fuzzer; an exception
other than the refusals a target expects is a finding.

Nothing here needs Redis: every client points at a closed port, so that a
hostile input that made a namespace reach for its store would show up as
an error instead of passing unnoticed.
"""

import base64
from urllib.parse import quote, urljoin, urlsplit
import atheris

with atheris.instrument_imports(include=['pyramid_session_suite', 'webob']):
    from pyramid.config import Configurator
    from pyramid.httpexceptions import HTTPBadRequest, HTTPNotFound
    from pyramid.request import Request
    from pyramid.testing import DummyRequest
    import webob

    from pyramid_session_suite import CookieSessionFactory, RedisSessionFactory
    from pyramid_session_suite._request_cookies import readable_cookies
    from pyramid_session_suite.crossdomain import CROSSDOMAIN_KEY
    from pyramid_session_suite.crossdomain.tokens import TokenCodec, TokenError
    from pyramid_session_suite.user_index.views import (
        HANDLE,
        revocation_target,
    )

SECRET = 'fuzzing secret, 32 bytes or more, never used elsewhere'
NOWHERE = 'redis://127.0.0.1:9/0'  # the discard port: nothing listens
HUB = 'https://www.site-a.test'
SITE = 'https://www.site-b.test'
GROUP = {'www.site-a.test', 'www.site-b.test'}

redis_factory = RedisSessionFactory(
    SECRET,
    redis_url=NOWHERE,
    cookie_name='main',
    key_prefix='session_suite:main:',
)
cookie_factory = CookieSessionFactory(SECRET, cookie_name='prefs')
codec = TokenCodec([SECRET], [HUB, SITE])


def text_of(provider, size=None):
    """Text as a server hands it over: bytes, read as latin-1."""
    size = provider.remaining_bytes() if size is None else size
    return provider.ConsumeBytes(size).decode('latin-1')


def cookie(data):
    """A session cookie's value, as the Redis namespaces decode it: only a
    value signed for this cookie name, holding a well-formed id, counts."""
    provider = atheris.FuzzedDataProvider(data)
    signed = provider.ConsumeBool()
    value = provider.ConsumeUnicodeNoSurrogates(provider.remaining_bytes())
    if signed:
        value = redis_factory.cookie_signer.dumps(value).decode()
    found = redis_factory.session_id_from_cookie(value)
    if found is None:
        return
    assert signed, 'an unsigned cookie was accepted'
    assert found.startswith('session_suite:main:'), found
    assert redis_factory.new_session_id().count(':') <= found.count(':')


def cookie_header(data):
    """A whole Cookie header: readable whatever it holds; no namespace
    finds a session in it, none reaches for its store."""
    request = Request.blank(
        '/', environ={'HTTP_COOKIE': data.decode('latin-1')}
    )
    request.registry = registry
    cookies = readable_cookies(request)
    len(cookies)
    assert dict(request.cookies) == dict(cookies)
    session = cookie_factory(request)
    assert not session, 'a forged cookie session was read'
    session = redis_factory(request)
    assert session.new, 'a forged Redis session was loaded'


def token(data):
    """Cross-domain tokens: anything but a token the hub made for this
    destination, this flow and this browser is refused."""
    provider = atheris.FuzzedDataProvider(data)
    mode = provider.ConsumeIntInRange(0, 2)
    flow = provider.PickValueInList(['redirect', 'script', 'push', ''])
    dst = provider.PickValueInList([SITE, HUB, 'https://evil.test', ''])
    state = provider.PickValueInList([None, '', 's' * 32, 't' * 32])
    if mode == 0:  # any text
        candidate = text_of(provider)
    elif mode == 1:  # any bytes, well encoded
        raw = provider.ConsumeBytes(provider.remaining_bytes())
        candidate = base64.urlsafe_b64encode(raw).rstrip(b'=').decode()
    else:  # a real token, changed
        real = codec.mint('session_suite:main:x', HUB, SITE, state='s' * 32)
        raw = bytearray(
            base64.urlsafe_b64decode(real + '=' * (-len(real) % 4))
        )
        for position, byte in enumerate(provider.ConsumeBytes(len(raw))):
            raw[position] ^= byte
        candidate = base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()
        if candidate == real:
            return
    try:
        payload = codec.open(candidate, dst, state=state, flow=flow)
    except TokenError:
        return
    raise AssertionError(f'a token was accepted: {payload!r}')


crossdomain_settings = {
    'session_suite.namespaces': 'main',
    'session_suite.request_session': 'main',
    'session_suite.redis_url': NOWHERE,
    'session_suite.namespace.main.backend': 'redis',
    'session_suite.namespace.main.secret': SECRET,
    'session_suite.namespace.main.cookie_secure': 'true',
    'session_suite.crossdomain.sites': f'{HUB} {SITE}',
    'session_suite.crossdomain.secret': 'cross-domain-fuzzing-secret-32-bytes',
    'session_suite.crossdomain.flows': 'redirect push script',
}


def make_app():
    config = Configurator(settings=dict(crossdomain_settings))
    config.include('pyramid_session_suite.crossdomain')
    config.add_route('page', '/page')
    config.add_view(lambda request: request.response, route_name='page')
    return config.make_wsgi_app()


app = make_app()
registry = app.registry
group = registry[CROSSDOMAIN_KEY]


def next_(data):
    """``next`` URLs: a path on this site or a URL on a site of the
    group, and nothing a browser would read otherwise."""
    url = data.decode('utf-8', 'surrogateescape')
    safe = group.safe_next(url)
    if safe == '/':
        return
    assert safe == url
    assert safe.isascii() and safe.isprintable(), safe
    assert '\\' not in safe and ' ' not in safe, safe
    landed = urlsplit(urljoin(SITE + '/here', safe))
    assert landed.scheme in ('http', 'https'), safe
    assert landed.hostname in GROUP and landed.username is None, safe


BODY_TYPES = [
    'application/json',
    'application/json; charset=bogus',
    'application/json; charset=latin-1',
    'application/x-www-form-urlencoded',
    'application/x-www-form-urlencoded; charset=latin-1',
    'multipart/form-data',
    'multipart/form-data; boundary=x',
    'text/plain',
    '',
]


def body(data):
    """The JSON and form bodies of the session views: a handle, a scope,
    or a 400/404; nothing else."""
    provider = atheris.FuzzedDataProvider(data)
    content_type = provider.PickValueInList(BODY_TYPES)
    request = DummyRequest()
    request = Request.blank(
        '/sessions/revoke',
        method='POST',
        content_type=content_type or None,
        body=provider.ConsumeBytes(provider.remaining_bytes()),
    )
    try:
        handle, scope = revocation_target(request, ('others', 'all'))
    except (HTTPBadRequest, HTTPNotFound):
        return
    if handle is not None:
        assert scope is None and HANDLE.fullmatch(handle), handle
    else:
        assert scope in ('others', 'all'), scope


PATHS = [
    '/page',
    '/_session_suite/xd/begin',
    '/_session_suite/xd/export',
    '/_session_suite/xd/import',
    '/_session_suite/xd/s/x.js',
]


def host(data):
    """The cross-domain flows with any Host, path, query and cookies: no
    error, no Location off the group or the request's own host, nothing
    a server could not send."""
    provider = atheris.FuzzedDataProvider(data)
    host = text_of(provider, provider.ConsumeIntInRange(0, 80))
    host = ''.join(c for c in host if 32 <= ord(c) != 127)
    path = provider.PickValueInList(PATHS)
    query = quote(
        provider.ConsumeBytes(provider.ConsumeIntInRange(0, 200)), safe='=&%'
    )
    cookie = text_of(provider, provider.ConsumeIntInRange(0, 200))
    cookie = ''.join(c for c in cookie if c not in '\r\n')
    request = webob.Request.blank(
        path + '?' + query,
        environ={
            'HTTP_HOST': host,
            'HTTP_COOKIE': cookie,
            'HTTP_ACCEPT': 'text/html',
            'wsgi.url_scheme': provider.PickValueInList(['http', 'https']),
        },
    )
    response = request.get_response(app)
    assert response.status_code < 500, response.status
    for name, value in response.headerlist:
        value.encode('latin-1')
        assert value.isprintable(), (name, value)
    location = response.headers.get('Location')
    if location is not None:
        parts = urlsplit(location)
        assert parts.scheme in ('http', 'https'), location
        own = (host, 'localhost', 'localhost:80')
        assert parts.hostname in GROUP or parts.netloc in own, location


TARGETS = {
    'cookie': (cookie, 1024),
    'cookie_header': (cookie_header, 512),
    'token': (token, 4096),
    'next': (next_, 2048),
    'body': (body, 4096),
    'host': (host, 1024),
}
