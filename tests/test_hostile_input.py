"""Hostile input, generated: whatever arrives from the network, the parsers
answer with a refusal, never an exception, and accept nothing they should
not."""

from urllib.parse import urlsplit
from hypothesis import HealthCheck, given, settings, strategies as st
from pyramid.testing import DummyRequest
import pytest

from pyramid_session_suite import RedisSessionFactory
from pyramid_session_suite.crossdomain import CrossDomain, origin
from pyramid_session_suite.crossdomain.tokens import TokenCodec, TokenError

from .conftest import SECRET

HUB = 'https://www.site-a.test'
SITE = 'https://www.site-b.test'
XD_SECRET = 'hostile-input-test-secret-of-32-bytes-or-more'

examples = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
text = st.text(max_size=400) | st.binary(max_size=400).map(
    lambda b: b.decode('latin-1')
)


@pytest.fixture(scope='module')
def factory():
    return RedisSessionFactory(
        SECRET, redis_url='redis://127.0.0.1:1/0', cookie_name='r'
    )


@examples
@given(value=text)
def test_cookie_values_never_raise(factory, value):
    assert factory.session_id_from_cookie(value) is None


@examples
@given(session_id=text)
def test_a_signed_cookie_is_accepted_only_for_a_well_formed_id(
    factory, session_id
):
    cookie = factory.cookie_signer.dumps(session_id).decode()
    found = factory.session_id_from_cookie(cookie)
    assert found is None or found == session_id
    if found is not None:
        assert found.startswith('session:')


def test_a_real_id_round_trips(factory):
    session_id = factory.new_session_id('YWxpY2U')
    cookie = factory.cookie_signer.dumps(session_id).decode()
    assert factory.session_id_from_cookie(cookie) == session_id


codec = TokenCodec([XD_SECRET], [HUB, SITE])


@examples
@given(token=text, state=st.none() | text)
def test_tokens_never_raise_anything_but_token_errors(token, state):
    with pytest.raises(TokenError):
        codec.open(token, SITE, state=state)


@examples
@given(position=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused(position, bit):
    import base64

    token = codec.mint('session:x', HUB, SITE, state='s' * 20)
    raw = bytearray(base64.urlsafe_b64decode(token + '=' * (-len(token) % 4)))
    raw[position % len(raw)] ^= 1 << bit
    bad = base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()
    with pytest.raises(TokenError):
        codec.open(bad, SITE, state='s' * 20)


group = CrossDomain(
    {
        'sites': [HUB, SITE],
        'hub': None,
        'secret': [XD_SECRET],
        'timeout': 30,
        'clock_skew': 5,
        'always_replace': False,
        'flows': ['redirect'],
        'route_prefix': '/_session_suite',
        'retry_after': 600,
    },
    factory=None,
    namespace='main',
)


@examples
@given(url=text | st.from_regex(r'\A(https?:)?//?[^\s]{0,60}\Z'))
def test_next_urls_stay_in_the_group(url):
    safe = group.safe_next(url)
    if safe.startswith('/'):
        assert not safe.startswith('//') and '\\' not in safe
        return
    parts = urlsplit(safe)
    assert origin(f'{parts.scheme}://{parts.netloc}') in group.sites
    assert parts.username is None


@pytest.fixture(scope='module')
def client_infos():
    from pyramid_session_suite.user_index.client_info import ClientInfo

    proxies = (None, 1, 3, ['10.0.0.0/8', '::1/128'])
    return [ClientInfo(trusted_proxies=p) for p in proxies]


@examples
@given(forwarded=text, remote=st.ip_addresses().map(str), ua=text)
def test_client_descriptions_never_raise(client_infos, forwarded, remote, ua):
    import ipaddress

    for info in client_infos:
        request = DummyRequest(
            environ={
                'REMOTE_ADDR': remote,
                'HTTP_X_FORWARDED_FOR': forwarded,
                'HTTP_USER_AGENT': ua,
            }
        )
        described = info.describe(request)
        assert described['ip'] is None or ipaddress.ip_address(described['ip'])
        assert isinstance(described['label'], str)
