"""ClientInfo: the client address, browser label and location recorded by
the session user index, with the real ua-parser and a real .mmdb file."""

import sys
from pyramid.exceptions import ConfigurationError
from pyramid.testing import DummyRequest
import pytest
from webob import Request

from pyramid_session_suite.user_index.client_info import ClientInfo

FIREFOX_LINUX = (
    'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
)
CHROME_WINDOWS = (
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 '
    '(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
)
SAFARI_IPHONE = (
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) '
    'AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 '
    'Mobile/15E148 Safari/604.1'
)
SAFARI_IPAD = SAFARI_IPHONE.replace('iPhone; CPU iPhone OS', 'iPad; CPU OS')
SAFARI_MAC = (
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 '
    '(KHTML, like Gecko) Version/17.5 Safari/605.1.15'
)
CHROME_ANDROID = (
    'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 '
    '(KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36'
)
GOOGLEBOT = (
    'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
)
GOOGLEBOT_SMARTPHONE = (
    'Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) '
    'AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile '
    'Safari/537.36 (compatible; Googlebot/2.1; '
    '+http://www.google.com/bot.html)'
)


def request(remote_addr='198.51.100.7', forwarded=None, ua=None):
    headers = {}
    if forwarded is not None:
        headers['X-Forwarded-For'] = forwarded
    if ua is not None:
        headers['User-Agent'] = ua
    return Request.blank('/', remote_addr=remote_addr, headers=headers)


# Client address


def test_the_socket_address_is_the_client_by_default():
    assert ClientInfo().ip(request('198.51.100.7')) == '198.51.100.7'


def test_dummy_requests_work_too():
    req = DummyRequest(
        environ={'REMOTE_ADDR': '198.51.100.7'},
        headers={'User-Agent': FIREFOX_LINUX},
    )
    info = ClientInfo().describe(req)
    assert info['ip'] == '198.51.100.7'
    assert info['label'] == 'Firefox on Linux'
    assert ClientInfo().ip(DummyRequest()) is None


def test_forwarded_for_is_ignored_by_default():
    # Any client can send the header: believing it would let it pick the
    # address shown in its victim's session list.
    spoofed = request('198.51.100.7', forwarded='1.2.3.4')
    assert ClientInfo().ip(spoofed) == '198.51.100.7'


def test_one_trusted_proxy_takes_the_last_entry():
    info = ClientInfo(trusted_proxies=1)
    req = request('10.0.0.2', forwarded='6.6.6.6, 203.0.113.9')
    assert info.ip(req) == '203.0.113.9'  # 6.6.6.6 is the client's lie


def test_two_trusted_proxies_take_the_second_entry_from_the_right():
    info = ClientInfo(trusted_proxies=2)
    req = request('10.0.0.2', forwarded='6.6.6.6, 203.0.113.9, 10.0.0.1')
    assert info.ip(req) == '203.0.113.9'


def test_a_chain_shorter_than_the_proxies_falls_back_to_the_socket():
    info = ClientInfo(trusted_proxies=2)
    assert info.ip(request('10.0.0.2', forwarded='203.0.113.9')) == (
        '10.0.0.2'
    )
    assert info.ip(request('10.0.0.2')) == '10.0.0.2'
    assert info.ip(request('10.0.0.2', forwarded='')) == '10.0.0.2'


def test_one_client_info_answers_each_request_for_itself():
    """The addresses are remembered per worker: by the socket address, and
    by the header as well when proxies are trusted."""
    trusting, plain = ClientInfo(trusted_proxies=1), ClientInfo()
    for forwarded, expected in [
        ('203.0.113.9', '203.0.113.9'),
        ('203.0.113.10', '203.0.113.10'),
        (None, '10.0.0.2'),
        ('203.0.113.9', '203.0.113.9'),
    ]:
        req = request('10.0.0.2', forwarded=forwarded)
        assert trusting.ip(req) == expected
        assert plain.ip(req) == '10.0.0.2'
    assert plain.ip(request('198.51.100.8', forwarded='6.6.6.6')) == (
        '198.51.100.8'
    )
    assert ClientInfo(store_ip='truncated').ip(request('198.51.100.8')) == (
        '198.51.100.0'
    )


def test_hop_count_never_returns_garbage():
    info = ClientInfo(trusted_proxies=2)
    for forwarded in ('nonsense, 10.0.0.1', 'unknown,10.0.0.1', ' , 10.0.0.1'):
        req = request('10.0.0.2', forwarded=forwarded)
        assert info.ip(req) == '10.0.0.1', forwarded  # last valid one
    req = request('10.0.0.2', forwarded='203.0.113.9, <script>')
    assert info.ip(req) == '10.0.0.2'


def test_trusted_networks_walk_the_chain_from_the_right():
    info = ClientInfo(trusted_proxies=['10.0.0.0/8', '2001:db8:ffff::/48'])
    req = request(
        '10.0.0.2', forwarded='6.6.6.6, 203.0.113.9, 10.1.2.3, 10.0.0.1'
    )
    assert info.ip(req) == '203.0.113.9'
    req = request('2001:db8:ffff::2', forwarded='203.0.113.9, 10.0.0.1')
    assert info.ip(req) == '203.0.113.9'


def test_trusted_networks_ignore_the_header_from_untrusted_peers():
    info = ClientInfo(trusted_proxies=['10.0.0.0/8'])
    req = request('198.51.100.7', forwarded='203.0.113.9')
    assert info.ip(req) == '198.51.100.7'


def test_trusted_networks_stop_at_garbage():
    info = ClientInfo(trusted_proxies=['10.0.0.0/8'])
    req = request('10.0.0.2', forwarded='203.0.113.9, bogus, 10.0.0.1')
    assert info.ip(req) == '10.0.0.1'
    req = request('10.0.0.2', forwarded='1.2.3.4.5')
    assert info.ip(req) == '10.0.0.2'
    # Every entry trusted: the leftmost one is as far as we can see.
    req = request('10.0.0.2', forwarded='10.9.9.9, 10.0.0.1')
    assert info.ip(req) == '10.9.9.9'


def test_huge_and_hostile_forwarded_headers_never_raise():
    huge = ', '.join(['203.0.113.9'] * 50_000) + ', 10.0.0.1'
    hostile = '\x00, ١٢٣.1.1.1, 203.0.113.9\u2028, ' + 'x' * 100_000
    for trusted in (1, 3, ['10.0.0.0/8', '203.0.113.0/24']):
        info = ClientInfo(trusted_proxies=trusted)
        for forwarded in (huge, hostile, ',,,,', '[', '[::1', ':::'):
            assert info.ip(request('10.0.0.2', forwarded=forwarded)) in (
                '10.0.0.2',
                '10.0.0.1',
                '203.0.113.9',
            )


def test_ipv6_addresses_are_normalized():
    assert ClientInfo().ip(request('2001:DB8:0:0::1')) == '2001:db8::1'
    assert ClientInfo().ip(request('::ffff:198.51.100.7')) == '198.51.100.7'
    assert ClientInfo().ip(request('fe80::1%eth0')) == 'fe80::1'
    info = ClientInfo(trusted_proxies=['::ffff:10.0.0.0/104', '10.0.0.0/8'])
    req = request('::ffff:10.0.0.2', forwarded='[2001:DB8::7]:443')
    assert info.ip(req) == '2001:db8::7'
    req = request('10.0.0.2', forwarded='198.51.100.7:5555')
    assert info.ip(req) == '198.51.100.7'


def test_store_ip_truncated_keeps_a_slash_24_or_slash_48():
    info = ClientInfo(store_ip='truncated')
    assert info.ip(request('198.51.100.77')) == '198.51.100.0'
    assert info.ip(request('2001:db8:1:2:3::9')) == '2001:db8:1::'
    assert info.ip(request('::ffff:198.51.100.77')) == '198.51.100.0'


def test_store_ip_none_keeps_nothing():
    info = ClientInfo(store_ip='none')
    assert info.ip(request('198.51.100.7')) is None
    assert info.describe(request('198.51.100.7'))['ip'] is None


@pytest.mark.parametrize(
    'kwargs, setting',
    [
        ({'store_ip': 'partial'}, 'session_suite.user_index.store_ip'),
        ({'geo': 'street'}, 'session_suite.user_index.geo'),
        ({'trusted_proxies': -1}, 'session_suite.user_index.trusted_proxies'),
        (
            {'trusted_proxies': ['10.0.0.0/8', 'proxy.local']},
            'session_suite.user_index.trusted_proxies',
        ),
    ],
)
def test_bad_settings_are_configuration_errors(kwargs, setting):
    with pytest.raises(ConfigurationError, match=setting):
        ClientInfo(**kwargs)


# Browser


@pytest.mark.parametrize(
    'ua, label, mobile',
    [
        (FIREFOX_LINUX, 'Firefox on Linux', False),
        (CHROME_WINDOWS, 'Chrome on Windows', False),
        (SAFARI_MAC, 'Safari on macOS', False),
        (SAFARI_IPHONE, 'Safari on iPhone', True),
        (SAFARI_IPAD, 'Safari on iPad', True),
        (CHROME_ANDROID, 'Chrome on Android', True),
        ('curl/8.5.0', 'curl', False),
        (GOOGLEBOT, 'Googlebot', False),
        (GOOGLEBOT_SMARTPHONE, 'Googlebot', False),
        ('', 'Unknown browser', False),
        ('\x00\xff日本語 🙂', 'Unknown browser', False),
    ],
)
def test_browser_labels(ua, label, mobile):
    info = ClientInfo().describe(request(ua=ua))
    assert (info['ua'], info['label'], info['mobile']) == (ua, label, mobile)


def test_a_missing_user_agent_is_an_empty_string():
    info = ClientInfo().describe(request())
    assert info['ua'] == ''
    assert info['label'] == 'Unknown browser'


def test_huge_user_agents_are_truncated():
    ua = FIREFOX_LINUX + ' ' + 'é' * 100_000
    info = ClientInfo().describe(request(ua=ua))
    assert info['ua'] == ua[:512]
    assert info['label'] == 'Firefox on Linux'


def test_repeated_user_agents_are_parsed_once():
    client_info = ClientInfo()
    for _ in range(3):
        client_info.describe(request(ua=CHROME_WINDOWS))
    cache = client_info._summary.cache_info()
    assert (cache.misses, cache.hits) == (1, 2)


def test_ua_parser_is_required(monkeypatch):
    monkeypatch.setitem(sys.modules, 'ua_parser', None)
    with pytest.raises(
        ConfigurationError, match=r'pyramid_session_suite\[user_index\]'
    ):
        ClientInfo()


# Location, from a real database written for the test


@pytest.fixture
def geo_client_info(city_db):
    client_info = ClientInfo(geoip_db=str(city_db))
    yield client_info
    client_info.close()


def test_describe_with_a_city_database(geo_client_info):
    req = request('81.2.69.142', ua=FIREFOX_LINUX)
    assert geo_client_info.describe(req) == {
        'ip': '81.2.69.142',
        'ua': FIREFOX_LINUX,
        'label': 'Firefox on Linux',
        'mobile': False,
        'location': 'London, United Kingdom',
    }


def test_a_record_without_a_city_gives_the_country(geo_client_info):
    req = request('2a02:d300::1')
    assert geo_client_info.describe(req)['location'] == 'Ukraine'


def test_geo_country(city_db):
    # geoip2 refuses .country() on a City database: this must still work.
    client_info = ClientInfo(geoip_db=city_db, geo='country')
    req = request('::ffff:81.2.69.142')
    assert client_info.describe(req)['location'] == 'United Kingdom'


def test_unknown_and_private_addresses_have_no_location(geo_client_info):
    for addr in ('8.8.8.8', '10.0.0.1', '127.0.0.1', '::1', None):
        info = geo_client_info.describe(request(addr))
        assert info['location'] is None, addr


def test_location_is_looked_up_before_truncation(city_db):
    for store_ip, ip in (('truncated', '81.2.69.0'), ('none', None)):
        client_info = ClientInfo(store_ip=store_ip, geoip_db=city_db)
        info = client_info.describe(request('81.2.69.142'))
        assert (info['ip'], info['location']) == (ip, 'London, United Kingdom')


def test_no_location_without_a_database_or_with_geo_off(city_db):
    assert ClientInfo().describe(request('81.2.69.142'))['location'] is None
    client_info = ClientInfo(geoip_db=city_db, geo='off')
    assert client_info.describe(request('81.2.69.142'))['location'] is None


def test_a_missing_database_is_a_configuration_error(tmp_path):
    with pytest.raises(
        ConfigurationError, match='session_suite.user_index.geoip_db'
    ):
        ClientInfo(geoip_db=str(tmp_path / 'GeoLite2-City.mmdb'))


def test_a_file_that_is_not_a_database_is_a_configuration_error(tmp_path):
    path = tmp_path / 'GeoLite2-City.mmdb'
    path.write_text('not a database')
    with pytest.raises(
        ConfigurationError, match='session_suite.user_index.geoip_db'
    ):
        ClientInfo(geoip_db=str(path))


def test_geoip2_is_needed_for_a_database(city_db, monkeypatch):
    monkeypatch.setitem(sys.modules, 'geoip2.database', None)
    with pytest.raises(ConfigurationError, match='geoip2'):
        ClientInfo(geoip_db=str(city_db))


def test_ports_are_dropped_from_forwarded_entries():
    info = ClientInfo(trusted_proxies=1)
    for forwarded, ip in [
        ('198.51.100.7:5555', '198.51.100.7'),
        ('[2001:db8::7]:443', '2001:db8::7'),
        ('[2001:db8::7]', '2001:db8::7'),
        ('[2001:db8::7', '10.0.0.2'),
        ('[2001:db8::7]:', '10.0.0.2'),
        ('198.51.100.7:http', '10.0.0.2'),
        ('[198.51.100.7]:1', '198.51.100.7'),
    ]:
        assert info.ip(request('10.0.0.2', forwarded=forwarded)) == ip, (
            forwarded
        )
