"""How Redis sessions are stored: values round-trip exactly through every
write path, a write changes only its own keys, and sessions stored by the
previous release keep working."""

from datetime import datetime, timezone
from decimal import Decimal
import json
import pickle
from hypothesis import given, settings, strategies as st
from pyramid.config import Configurator
from pyramid_session_redis.util import encode_session_payload
import pytest
from webtest import TestApp

from pyramid_session_suite import RedisSessionFactory
from pyramid_session_suite.redis import stored as fmt
from pyramid_session_suite.redis.session import decode, json_dumps

from .conftest import SECRET, stored

#: values JSON keeps exactly (Python is their only encoder)
JSON_VALUES = {
    'past 2**53': 2**53 + 1,
    'huge': 10**30,
    'negative': -(2**63),
    'float': 0.1,
    'smallest': 5e-324,
    'largest': 1.7976931348623157e308,
    'minus zero': -0.0,
    'empty list': [],
    'empty dict': {},
    'unicode': 'naïve 日本語 ✓ \U0001f600 \x00 "quoted"',
    'nested': {'a': [1, {'b': []}, {}], 'c': {'d': [[], {}, [{}]]}},
    'flags': [True, False, None],
    'digits': '12345678901234567890',
    'long': 'x' * 70_000,
    'k' * 300: 'a key longer than 255 bytes',
}

#: what only pickle keeps
PICKLE_VALUES = dict(
    JSON_VALUES,
    **{
        'tuple': (1, (2, 3)),
        'set': {1, 2},
        'bytes': b'\x00\xff',
        'when': datetime(2026, 12, 6, 1, 2, 3, 456789, tzinfo=timezone.utc),
        'decimal': Decimal('0.1'),
        'int keys': {1: 'one', (2, 3): 'tuple'},
    },
)
PICKLE_VALUES[7] = 'a key that is not a string'
PICKLE_VALUES[('a', 1)] = 'a tuple key'


def same(a, b):
    """Equal, and of the same types all the way down."""
    return repr(a) == repr(b)


def values_app(factory, values):
    config = Configurator()
    config.include('pyramid_session_suite')
    config.set_session_factory(factory)

    def put(request):
        request.session.update(values)
        return {}

    def other(request):  # a write of another key: the merge path
        request.session['other'] = request.params.get('v', 1)
        return {}

    def check(request):
        session = request.session
        return {
            'wrong': [
                repr(key)[:40]
                for key, value in values.items()
                if key not in session or not same(session[key], value)
            ],
            'size': len(session.keys()),
        }

    for name, view in [('put', put), ('other', other), ('check', check)]:
        config.add_route(name, '/' + name)
        config.add_view(view, route_name=name, renderer='json')
    return TestApp(config.make_wsgi_app())


@pytest.mark.parametrize(
    'serializer, values',
    [('json', JSON_VALUES), ('pickle', PICKLE_VALUES)],
)
def test_values_round_trip_exactly(redis_url, serializer, values):
    options = {}
    if serializer == 'pickle':
        options = {'serialize': pickle.dumps, 'deserialize': pickle.loads}
    factory = RedisSessionFactory(
        SECRET, redis_url=redis_url, cookie_name='s', **options
    )
    app = values_app(factory, values)
    app.get('/put')  # created whole
    assert app.get('/check').json == {'wrong': [], 'size': len(values)}
    app.get('/other?v=2')  # merged in Redis
    assert app.get('/check').json == {'wrong': [], 'size': len(values) + 1}
    app.get('/put')  # every key again
    app.get('/other?v=3')
    assert app.get('/check').json == {'wrong': [], 'size': len(values) + 1}


def test_a_merge_leaves_the_other_keys_byte_for_byte(redis_url, redis_client):
    factory = RedisSessionFactory(SECRET, redis_url=redis_url, cookie_name='s')
    app = values_app(factory, JSON_VALUES)
    app.get('/put')
    [key] = redis_client.keys('session:*')
    before = fmt.unpack(redis_client.get(key))[1]
    app.get('/other?v=2')
    created, after = fmt.unpack(redis_client.get(key))
    assert after.pop(b'other') == b'"2"'
    assert list(after.items()) == list(before.items())
    for name, value in JSON_VALUES.items():
        assert after[name.encode()] == json_dumps(value)


def test_an_older_payload_is_never_merged_into(redis_client):
    """A write that holds only some keys is not applied to a payload of an
    earlier release (stored again by an older worker mid-request)."""
    old = json_dumps(encode_session_payload({'a': 1, 'b': 2}, 1, 1200, None))
    redis_client.set('s1', old)
    merge = redis_client.register_script(fmt.MERGE)
    header = fmt.header(1)
    args = [0, header, '0', 1, 0, b'a', b'3']
    assert merge(keys=['s1'], args=args) == -1
    assert redis_client.get('s1') == old
    # a whole write replaces it
    args = [0, header, '1', 1, 1, b'a', b'3', b'b', b'2']
    assert merge(keys=['s1'], args=args) == 1
    assert decode(redis_client.get('s1'), json.loads)[0]['m'] == {
        'a': 3,
        'b': 2,
    }


def test_a_merge_never_writes_an_ended_or_missing_session(redis_client):
    merge = redis_client.register_script(fmt.MERGE)
    args = [0, fmt.header(1), '0', 1, 0, b'a', b'1']
    assert merge(keys=['gone'], args=args) == 0
    assert redis_client.exists('gone') == 0
    redis_client.set('ended', b'\x00revoked')
    assert merge(keys=['ended'], args=args) == 0
    assert redis_client.get('ended') == b'\x00revoked'


def test_the_last_key_deleted_deletes_the_session(redis_url, redis_client):
    factory = RedisSessionFactory(SECRET, redis_url=redis_url, cookie_name='s')
    config = Configurator()
    config.include('pyramid_session_suite')
    config.set_session_factory(factory)
    inner = []

    def put(request):
        request.session[request.params['key']] = 1
        return {}

    def drop(request):
        request.session.pop(request.params['key'])
        if request.params.get('meanwhile'):
            # another request of the same browser adds a key meanwhile
            inner[0].get('/put?key=' + request.params['meanwhile'])
        return {}

    for name, view in [('put', put), ('drop', drop)]:
        config.add_route(name, '/' + name)
        config.add_view(view, route_name=name, renderer='json')
    wsgi = config.make_wsgi_app()
    app = TestApp(wsgi)
    app.get('/put?key=a')
    [key] = redis_client.keys('session:*')
    inner.append(TestApp(wsgi, cookiejar=app.cookiejar))
    res = app.get('/drop?key=a&meanwhile=b')
    # emptied here, but the other request's key is kept: so is the session
    assert stored(redis_client, key)['m'] == {'b': 1}
    assert 'Set-Cookie' not in res.headers
    res = app.get('/drop?key=b')
    assert redis_client.exists(key) == 0
    assert 'Max-Age=0' in res.headers['Set-Cookie']


# --- upgrade in place --------------------------------------------------------


def legacy(data, created, timeout=1200, serialize=json_dumps):
    """A session payload as the previous release wrote it: the whole
    session, serialized at once."""
    return serialize(encode_session_payload(data, created, timeout, None))


@pytest.mark.parametrize('serializer', ['json', 'pickle'])
def test_sessions_stored_by_the_previous_release_keep_working(
    redis_url, redis_client, serializer
):
    serialize, deserialize = json_dumps, json.loads
    values = JSON_VALUES
    if serializer == 'pickle':
        serialize, deserialize = pickle.dumps, pickle.loads
        values = PICKLE_VALUES
    factory = RedisSessionFactory(
        SECRET,
        redis_url=redis_url,
        cookie_name='s',
        serialize=serialize,
        deserialize=deserialize,
    )
    app = values_app(factory, values)
    sid = factory.new_session_id()
    redis_client.set(
        sid, legacy(dict(values), 1_700_000_000, serialize=serialize), ex=900
    )
    app.set_cookie('s', factory.cookie_signer.dumps(sid).decode())
    assert app.get('/check').json == {'wrong': [], 'size': len(values)}
    assert redis_client.get(sid)[:1] != b'\x01'  # a read changes nothing
    app.get('/other?v=2')  # the first write stores it the new way
    assert redis_client.get(sid)[:1] == b'\x01'
    payload = stored(redis_client, sid, deserialize)
    assert payload['c'] == 1_700_000_000
    assert app.get('/check').json == {'wrong': [], 'size': len(values) + 1}
    assert 1100 < redis_client.ttl(sid) <= 1200


def test_a_timeout_of_its_own_survives_the_upgrade(redis_url, redis_client):
    factory = RedisSessionFactory(SECRET, redis_url=redis_url, cookie_name='s')
    app = values_app(factory, {})
    sid = factory.new_session_id()
    redis_client.set(sid, legacy({'a': 1}, 1_700_000_000, timeout=60), ex=60)
    app.set_cookie('s', factory.cookie_signer.dumps(sid).decode())
    app.get('/other')
    assert stored(redis_client, sid)['t'] == 60
    assert 0 < redis_client.ttl(sid) <= 60
    app.get('/other?v=3')
    assert 0 < redis_client.ttl(sid) <= 60


def test_two_requests_that_loaded_the_old_form_both_keep_their_changes(
    redis_client,
):
    """The first write stores the whole session the new way; the second,
    which loaded the old form too, is merged into it like any write."""
    old = {'a': 1, 'b': 2}
    redis_client.set('s1', legacy(old, 1))
    merge = redis_client.register_script(fmt.MERGE)

    def write(sets, unchanged):
        args = [0, fmt.header(1), '1', len(sets), len(unchanged)]
        for name, value in (*sets, *unchanged):
            args += (name.encode(), json_dumps(value))
        return merge(keys=['s1'], args=args)

    assert write([('c', 9)], [('a', 1), ('b', 2)]) == 1
    assert write([('b', 3)], [('a', 1)]) == 1
    data = decode(redis_client.get('s1'), json.loads)[0]['m']
    assert data == {'a': 1, 'b': 3, 'c': 9}


# --- the merge, against a model ----------------------------------------------

names = st.one_of(
    st.binary(min_size=1, max_size=12),
    st.binary(min_size=250, max_size=300),  # lengths past one byte
)
values = st.one_of(
    st.binary(max_size=20),
    st.binary(min_size=250, max_size=600),
)


@given(
    before=st.dictionaries(names, values, max_size=8),
    sets=st.dictionaries(names, values, max_size=6),
    deletes=st.lists(names, max_size=6),
)
@settings(max_examples=150, deadline=None)
def test_a_merge_applies_exactly_the_changes(
    redis_server, before, sets, deletes
):
    client = redis_server.client()
    deletes = [name for name in deletes if name not in sets]
    client.set('model', fmt.pack(7, before.items()))
    args = [0, fmt.header(7), '0', len(sets), 0]
    for name, value in sets.items():
        args += (name, value)
    args += deletes
    reply = client.eval(fmt.MERGE, 1, 'model', *args)
    expected = {k: v for k, v in before.items() if k not in deletes}
    expected.update(sets)
    if not expected:
        assert reply == 2 and client.exists('model') == 0
        return
    assert reply == 1
    created, records = fmt.unpack(client.get('model'))
    assert created == 7
    assert records == expected
    # the keys kept keep their order; new ones follow in the order sent
    kept = [k for k in before if k in expected]
    assert list(records)[: len(kept)] == kept
    client.close()


@pytest.mark.parametrize(
    'value',
    [0, -1.5, 10**30, 'text', 'é"\\\n', None, True, [1, {'a': None}], {}],
)
def test_a_value_reads_back_as_json_gives_it(value):
    from pyramid_session_suite.redis.session import json_loads

    encoded = json_dumps(value)
    assert json_loads(encoded) == value
    assert json_loads(encoded.decode()) == value
    assert json_loads(b' ' + encoded + b'\n') == value  # spaces around


@pytest.mark.parametrize('data', [b'', b'{', b'1 2', b'nul', b'"a'])
def test_what_is_not_json_raises_the_decoders_error(data):
    from pyramid_session_suite.redis.session import json_loads

    with pytest.raises(json.JSONDecodeError):
        json_loads(data)


def stored_session(records):
    return fmt.pack(7, [(name.encode(), value) for name, value in records])


def test_a_sessions_values_are_read_together_as_each_alone():
    from pyramid_session_suite.redis.session import json_loads

    values = {
        'token': 'a' * 64,
        'n': 10**30,
        'unicode': 'naïve 日本語 \U0001f600 "q"',
        'nested': {'a': [1, {'b': []}]},
        'spaced': 1,
    }
    records = [(key, json_dumps(value)) for key, value in values.items()]
    records.append(('spaced', b' 1 '))  # not ours, but JSON: read alone
    payload, _ = decode(stored_session(records), json_loads)
    assert payload['m'] == values
    # JSON in UTF-8 rather than escaped (not ours either): read alone
    records.append(('raw', '"café"'.encode()))
    payload, _ = decode(stored_session(records), json_loads)
    assert payload['m'] == {**values, 'raw': 'café'}


@pytest.mark.parametrize(
    'values',
    [
        # joined, these would read as three values: each is read alone
        [b'1,2', b'[3', b'4]'],
        [b'"a', b'b"'],
        [b'1', b'nul'],
    ],
)
def test_a_value_that_is_not_json_alone_is_an_error_together(values):
    from pyramid_session_suite.redis.session import json_loads

    records = [(f'k{n}', value) for n, value in enumerate(values)]
    with pytest.raises(json.JSONDecodeError):
        decode(stored_session(records), json_loads)


@pytest.mark.parametrize('cut', range(1, 12))
def test_a_stored_session_cut_short_is_not_read(cut):
    data = stored_session([('ab', b'"xyz"'), ('k' * 300, b'1')])
    assert fmt.unpack(data)[1] == {b'ab': b'"xyz"', b'k' * 300: b'1'}
    with pytest.raises(ValueError, match='cut short'):
        fmt.unpack(data[:-cut])
    if cut != 9:  # 5 + 9 bytes: the first record, whole
        with pytest.raises(ValueError, match='cut short'):
            fmt.unpack(data[: 5 + cut])


LOGINS = {
    'a login': {
        b'\xffl': b'1765000000000',
        b'\xffa': b'1765000060000',
        b'\xffi': b'198.51.100.7',
        b'\xffu': 'Firefox ✓'.encode(),
        b'\xffo': b'\x00\x01\xff\x00\x10\x20\x30\x00',
        b'\xffs': b'\x00' * 8 + b'\xff' * 8,
    },
    'a location, no address, no origin': {
        b'\xffl': b'1765000000000',
        b'\xffa': b'1765000000000',
        b'\xffi': b'',
        b'\xffu': b'',
        b'\xffg': 'Zürich, Switzerland'.encode(),
        b'\xffs': b'\x01' * 16,
    },
}


@pytest.mark.parametrize('own', LOGINS.values(), ids=list(LOGINS))
def test_a_login_is_stored_as_one_record_and_read_back(redis_client, own):
    from pyramid_session_suite.redis import login_records as lr

    own = {**own, b'\xffx': b'another record'}
    records = lr.stored_own(own)
    assert [name for name, _ in records] == [b'\xffx', lr.LOGIN_RECORD]
    data = fmt.pack(7, [(b'k', b'1'), *records])
    assert lr.own_records(fmt.unpack(data)[1]) == own
    # the scripts of the user index read it the same
    script = (
        fmt.OWN_RECORDS
        + """
local t = internals(ARGV[1])
local out = {}
for name, value in pairs(t) do
  table.insert(out, name)
  table.insert(out, value)
end
return out
"""
    )
    flat = redis_client.eval(script, 0, data)
    assert dict(zip(flat[::2], flat[1::2], strict=True)) == own


def test_a_nul_in_a_login_text_is_stored_as_a_replacement_character():
    from pyramid_session_suite.redis import login_records as lr

    own = {**LOGINS['a login'], lr.USER_AGENT: b'Bot\x00/1'}
    [(name, value)] = lr.stored_own(own)
    read = lr.own_records({name: value})
    assert read[lr.USER_AGENT] == 'Bot\ufffd/1'.encode()
    assert lr.clean('Bot\x00/1') == 'Bot\ufffd/1'
    assert {**read, lr.USER_AGENT: own[lr.USER_AGENT]} == own


def test_own_records_without_a_login_are_stored_one_by_one():
    from pyramid_session_suite.redis import login_records as lr

    alone = {lr.SECRET: b'\x02' * 16}  # a login forgotten: its secret
    assert lr.stored_own(alone) == [(lr.SECRET, b'\x02' * 16)]
    assert lr.own_records(dict(lr.stored_own(alone))) == alone
