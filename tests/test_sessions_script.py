"""The ``session-suite`` console script, on an application made from an
ini file, against the suite's private Redis server."""

import io
import json
import pathlib
import re
import subprocess
import sys
from pyramid.paster import get_app
import pytest
from webtest import TestApp

from pyramid_session_suite.interfaces import IUserIndex
from pyramid_session_suite.redis.login_records import redis_key, split_id
from pyramid_session_suite.scripts.sessions import main
from pyramid_session_suite.testing import free_port
from pyramid_session_suite.user_index.store import GRACE_MS, user_tag

from . import previous_release as previous, scriptapp
from .conftest import ended_reason, live_keys
from .usersapp import FIREFOX, IPHONE

ROOT = pathlib.Path(__file__).resolve().parent.parent


SECTION = """\
[app:{name}]
use = call:tests.scriptapp:main
session_suite.redis_url = {redis_url}
{extra}
"""


def write_ini(path, redis_url, extra='', **sections):
    """An ini file whose ``main`` application uses ``redis_url``, and
    whose other ``name=url`` applications use ``url``."""
    sections = {'main': redis_url, **sections}
    path.write_text(
        '\n'.join(
            SECTION.format(name=name, redis_url=url, extra=extra)
            for name, url in sections.items()
        )
    )
    return str(path)


def closed_port():
    """A Redis URL on a port nobody listens on, and the port."""
    port = free_port()
    return f'redis://127.0.0.1:{port}/0', port


def run(*argv):
    """Run the script in this process: (exit code, output, errors)."""
    out, err = io.StringIO(), io.StringIO()
    code = main([str(arg) for arg in argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def browser(app, ua=FIREFOX, ip='198.51.100.7'):
    return TestApp(
        app, extra_environ={'HTTP_USER_AGENT': ua, 'REMOTE_ADDR': ip}
    )


def login(app, user, **kw):
    client = browser(app, **kw)
    client.get('/login', {'user': user})
    return client


def handle_of(client):
    return client.get('/mine').json['current']


@pytest.fixture(autouse=True)
def events():
    scriptapp.EVENTS.clear()
    yield scriptapp.EVENTS
    scriptapp.EVENTS.clear()


@pytest.fixture
def ini(tmp_path, redis_url):
    return write_ini(tmp_path / 'app.ini', redis_url)


@pytest.fixture
def app(ini):
    """The application of the ini file, for the browsers."""
    return get_app(ini)


@pytest.fixture
def alice_and_bob(app):
    """Alice on Firefox then on an iPhone, Bob on Firefox."""
    firefox = login(app, 'alice')
    iphone = login(app, 'alice', ua=IPHONE, ip='198.51.100.9')
    bob = login(app, 'bob', ip='203.0.113.5')
    return firefox, iphone, bob


def session_id(app, client):
    """The session id in the browser's cookie."""
    factory = app.registry.getUtility(IUserIndex).factory
    return factory.session_id_from_cookie(client.cookies['main'])


def session_key(userid, handle):
    """The Redis key of the session of ``userid`` whose handle is
    ``handle`` (its slot, then ``.`` and a digest)."""
    slot = handle.partition('.')[0]
    return f'session_suite:main:{{{user_tag(userid)}}}:{slot}'


def index_key(userid):
    """The key of the index of ``userid`` (while it has 2+ sessions)."""
    return f'session_suite:users:{{{user_tag(userid)}}}:i'


def kill(redis_client, userid, handle):
    """Delete the key of a session (as Redis expiry would)."""
    assert redis_client.delete(session_key(userid, handle)) == 1


def legacy_entry(redis_client, sid):
    """The index entry of a session of an earlier release, as stored, and
    its hash key."""
    base = sid[: sid.index('}:') + 2]
    h = base.replace(previous.SESSION_PREFIX, previous.INDEX_PREFIX) + 'h'
    return json.loads(redis_client.hget(h, previous.handle_of(sid))), h


def legacy_index_keys(userid):
    """The pattern of the index keys of ``userid`` of earlier releases."""
    return f'session_suite:users:{{{user_tag(userid)}}}:[hz]'


def kill_legacy(redis_client, sid, age=True):
    """Delete the key of a session of an earlier release (as Redis expiry
    would) and, with ``age``, date its index entry from before the login
    grace period."""
    assert redis_client.delete(sid) == 1
    if age:
        age_legacy(redis_client, sid)


def age_legacy(redis_client, sid):
    """Date the index entry of a session of an earlier release from before
    the login grace period."""
    meta, h = legacy_entry(redis_client, sid)
    meta['created'] -= GRACE_MS + 1000
    redis_client.hset(h, previous.handle_of(sid), json.dumps(meta))


# -- list -----------------------------------------------------------------


def test_list_shows_the_sessions_most_recent_first(ini, alice_and_bob):
    firefox, iphone, bob = alice_and_bob
    code, out, err = run(ini, 'list', 'alice')
    assert (code, err) == (0, '')
    lines = out.splitlines()
    assert lines[0] == '2 sessions of alice, most recent first:'
    assert lines[1].split('  ')[0].strip() == 'HANDLE'
    for word in ('CLIENT', 'IP', 'LOCATION', 'CREATED (UTC)', 'EXPIRES IN'):
        assert word in lines[1]
    newest, oldest = lines[2:]
    assert newest.startswith(handle_of(iphone) + '  ')
    assert 'Safari on iPhone' in newest and '198.51.100.9' in newest
    assert oldest.startswith(handle_of(firefox) + '  ')
    assert 'Firefox on Linux' in oldest and '198.51.100.7' in oldest
    # no location database: "-"; idle timeout 1200 s: 19 or 20 minutes
    assert '  -  ' in oldest
    assert re.search(r'  (19m \d\ds|20m 00s)$', oldest), oldest
    assert handle_of(bob) not in out


def test_list_as_json(ini, app, alice_and_bob):
    firefox, iphone, _ = alice_and_bob
    code, out, _ = run(ini, 'list', 'alice', '--json')
    assert code == 0
    listing = json.loads(out)
    assert listing['userid'] == 'alice'
    sessions = listing['sessions']
    assert [s['handle'] for s in sessions] == [
        handle_of(iphone),
        handle_of(firefox),
    ]
    iphone_entry = sessions[0]
    assert iphone_entry['label'] == 'Safari on iPhone'
    assert iphone_entry['ip'] == '198.51.100.9'
    assert iphone_entry['mobile'] is True
    assert iphone_entry['location'] is None
    assert iphone_entry['ua'] == IPHONE
    assert iphone_entry['created'] <= iphone_entry['last_seen']
    assert 1190 < iphone_entry['expires_in'] <= 1200
    # never the session id, and "current" means nothing here
    assert 'sid' not in iphone_entry and 'current' not in iphone_entry
    for client in (iphone, firefox):
        sid = session_id(app, client)
        secret = split_id(sid)[1]
        assert secret is not None
        assert sid not in out and secret not in out


def test_list_of_a_user_without_sessions(ini, alice_and_bob):
    assert run(ini, 'list', 'carol') == (0, 'carol has no sessions\n', '')
    code, out, _ = run(ini, 'list', 'carol', '--json')
    assert json.loads(out) == {'userid': 'carol', 'sessions': []}


def test_control_characters_are_escaped_in_tables(ini, app):
    login(app, 'eve\x1b[2J')
    code, out, _ = run(ini, 'counts')
    assert code == 0
    assert '\x1b' not in out
    assert 'eve\\x1b[2J  1' in out
    # JSON escapes them its own way, and keeps the id exact
    _, out, _ = run(ini, 'counts', '--json')
    assert json.loads(out)['users'] == {'eve\x1b[2J': 1}


# -- revoke -------------------------------------------------------------------


def test_revoke_ends_a_session_for_its_browser(
    ini, app, alice_and_bob, redis_client, events
):
    firefox, iphone, bob = alice_and_bob
    handle = handle_of(iphone)
    sid = session_id(app, iphone)
    assert redis_key(sid) in live_keys(redis_client, 'session_suite:main:*')
    code, out, err = run(ini, 'revoke', 'alice', handle)
    assert (code, out, err) == (0, 'ended 1 session of alice\n', '')
    # the session is gone; its key says why, for a while
    assert redis_key(sid) not in live_keys(
        redis_client, 'session_suite:main:*'
    )
    assert ended_reason(redis_client, sid) == 'operator'
    # its browser is anonymous on its next request, and told why
    res = iphone.get('/whoami')
    assert res.json == {'user': None, 'n': None, 'ended': 'operator'}
    assert 'Max-Age=0' in res.headers['Set-Cookie']
    # the others are untouched
    assert firefox.get('/whoami').json['user'] == 'alice'
    assert bob.get('/whoami').json['user'] == 'bob'
    _, out, _ = run(ini, 'list', 'alice', '--json')
    listed = [s['handle'] for s in json.loads(out)['sessions']]
    assert listed == [handle_of(firefox)]
    # subscribers heard of it, with the script's request
    [event] = events
    assert event.reason == 'operator' and event.userid == 'alice'
    assert event.handles == (handle,) and event.count == 1
    assert event.request is not None


def test_revoke_counts_what_matched(ini, alice_and_bob):
    firefox, iphone, bob = alice_and_bob
    code, out, _ = run(
        ini, 'revoke', 'alice', handle_of(firefox), 'no-such-handle'
    )
    assert code == 0
    assert out == 'ended 1 session of alice (1 handle matched nothing)\n'
    assert firefox.get('/whoami').json['user'] is None
    assert iphone.get('/whoami').json['user'] == 'alice'


def test_revoke_with_nothing_matching_exits_1(ini, alice_and_bob):
    firefox, iphone, bob = alice_and_bob
    handle = handle_of(firefox)
    assert run(ini, 'revoke', 'alice', handle)[0] == 0
    code, out, err = run(ini, 'revoke', 'alice', handle)
    assert code == 1 and err == ''
    assert out.startswith('no session of alice matched')
    # a handle of another user is not one of alice's
    assert run(ini, 'revoke', 'alice', handle_of(bob))[0] == 1
    assert bob.get('/whoami').json['user'] == 'bob'
    assert iphone.get('/whoami').json['user'] == 'alice'


def test_revoke_all(ini, app, alice_and_bob, redis_client, events):
    firefox, iphone, bob = alice_and_bob
    # bob on a second device too: he has an index, as alice has
    bob_iphone = login(app, 'bob', ua=IPHONE, ip='203.0.113.6')
    alices = [session_id(app, firefox), session_id(app, iphone)]
    bobs = [session_id(app, bob), session_id(app, bob_iphone)]
    code, out, _ = run(ini, 'revoke-all', 'alice')
    assert (code, out) == (0, 'ended 2 sessions of alice\n')
    assert [ended_reason(redis_client, sid) for sid in alices] == [
        'operator',
        'operator',
    ]
    assert live_keys(redis_client, 'session_suite:main:*') == sorted(
        redis_key(sid) for sid in bobs
    )
    assert firefox.get('/whoami').json['ended'] == 'operator'
    assert iphone.get('/whoami').json['user'] is None
    assert bob.get('/whoami').json['user'] == 'bob'
    assert bob_iphone.get('/whoami').json['user'] == 'bob'
    # alice's index is gone; bob's ({Ym9i}) is not
    assert redis_client.keys('session_suite:users:*') == [
        index_key('bob').encode()
    ]
    assert [(e.reason, e.count) for e in events] == [('operator', 2)]
    # nothing left to end is not an error
    assert run(ini, 'revoke-all', 'alice')[:2] == (
        0,
        'ended 0 sessions of alice\n',
    )


# -- prune --------------------------------------------------------------------


def test_prune_one_user_keeps_logins_in_flight(
    ini, app, alice_and_bob, redis_client
):
    firefox, iphone, _ = alice_and_bob
    slot = handle_of(iphone).partition('.')[0]
    kill(redis_client, 'alice', handle_of(iphone))
    # a login of this release writes its session and its index entry in
    # one script: an entry without its key is dead at once
    assert run(ini, 'prune', 'alice') == (
        0,
        'alice: removed 1 dead entry, 1 live session left\n',
        '',
    )
    assert slot.encode() not in redis_client.zrange(index_key('alice'), 0, -1)
    # a fresh entry of an earlier release without its key may be a login
    # in flight (a process of that release still running): kept
    sid = previous.login(redis_client, 'alice')
    kill_legacy(redis_client, sid, age=False)
    assert run(ini, 'prune', 'alice') == (
        0,
        'alice: removed 0 dead entries, 2 live sessions left\n',
        '',
    )
    age_legacy(redis_client, sid)
    assert run(ini, 'prune', 'alice') == (
        0,
        'alice: removed 1 dead entry, 1 live session left\n',
        '',
    )
    # that index, empty, is gone; the live session is still listed
    assert redis_client.keys(legacy_index_keys('alice')) == []
    _, out, _ = run(ini, 'list', 'alice', '--json')
    listed = [s['handle'] for s in json.loads(out)['sessions']]
    assert listed == [handle_of(firefox)]
    assert firefox.get('/whoami').json['user'] == 'alice'


def test_prune_every_user(ini, app, alice_and_bob, redis_client):
    firefox, iphone, bob = alice_and_bob
    bob_iphone = login(app, 'bob', ua=IPHONE, ip='203.0.113.6')
    dead = {'alice': handle_of(iphone), 'bob': handle_of(bob)}
    # alice's second session ends, bob's first (slot 0) too
    for userid, handle in dead.items():
        kill(redis_client, userid, handle)
    # carol's only session is of an earlier release, and long gone
    kill_legacy(redis_client, previous.login(redis_client, 'carol'))
    code, out, _ = run(ini, 'prune')
    assert code == 0
    assert out.splitlines() == [
        'alice: removed 1 dead entry',
        'bob: removed 1 dead entry',
        'carol: removed 1 dead entry',
        'removed 3 dead entries of 3 users; 3 users checked, '
        '2 live sessions left',
    ]
    for userid, handle in dead.items():
        slot = handle.partition('.')[0].encode()
        assert slot not in redis_client.zrange(index_key(userid), 0, -1)
    # carol's index is empty, so gone
    assert redis_client.keys(legacy_index_keys('carol')) == []
    assert firefox.get('/whoami').json['user'] == 'alice'
    assert bob_iphone.get('/whoami').json['user'] == 'bob'
    code, out, _ = run(ini, 'prune')
    assert out == (
        'removed 0 dead entries of 0 users; 2 users checked, '
        '2 live sessions left\n'
    )


# -- counts -------------------------------------------------------------------


def test_counts(ini, alice_and_bob):
    code, out, err = run(ini, 'counts')
    assert (code, err) == (0, '')
    assert out.splitlines() == [
        'USER   SESSIONS',
        'alice  2',
        'bob    1',
        'total: 3 live sessions, 2 users',
    ]
    code, out, _ = run(ini, 'counts', '--json')
    assert json.loads(out) == {
        'users': {'alice': 2, 'bob': 1},
        'total': 3,
        'unreadable': 0,
    }


def test_counts_show_unreadable_ids(ini, app, alice_and_bob):
    login(app, 'x' * 200)  # too long for its hash tag to be read back
    code, out, _ = run(ini, 'counts')
    assert code == 0
    assert out.splitlines() == [
        'USER             SESSIONS',
        'alice            2',
        'bob              1',
        '(unreadable id)  ?',
        'total: 3 live sessions, 2 users',
        '(1 user with an unreadable id not counted)',
    ]
    _, out, _ = run(ini, 'counts', '--json')
    assert json.loads(out)['unreadable'] == 1
    _, out, _ = run(ini, 'prune')
    assert 'skipped 1 user shown as (unreadable id):' in out


def test_counts_of_nobody(ini):
    assert run(ini, 'counts') == (0, 'total: 0 live sessions, 0 users\n', '')


def test_the_console_entry_point(ini, alice_and_bob):
    result = subprocess.run(
        [sys.executable, '-m', 'pyramid_session_suite.scripts.sessions']
        + [ini, 'counts'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        'USER   SESSIONS',
        'alice  2',
        'bob    1',
        'total: 3 live sessions, 2 users',
    ]


# -- errors and options -----------------------------------------------------


def test_an_application_without_the_index(tmp_path, redis_url):
    ini = write_ini(
        tmp_path / 'plain.ini',
        redis_url,
        'scriptapp.include = pyramid_session_suite',
    )
    code, out, err = run(ini, 'counts')
    assert (code, out) == (2, '')
    assert err.startswith('session-suite: error: the application of ')
    assert "config.include('pyramid_session_suite.user_index')" in err
    assert len(err.splitlines()) == 1


def test_redis_down(tmp_path):
    url, port = closed_port()
    ini = write_ini(tmp_path / 'down.ini', url)
    for argv in (
        ['counts'],
        ['list', 'alice'],
        ['revoke', 'alice', 'h'],
        ['prune', 'alice'],
    ):
        code, out, err = run(ini, *argv)
        assert (code, out) == (3, ''), argv
        assert err.startswith(
            f'session-suite: error: cannot reach Redis at 127.0.0.1:{port} '
            '(db 0): '
        ), err
        assert len(err.splitlines()) == 1
    # and from the console: one line, no traceback
    result = subprocess.run(
        [sys.executable, '-m', 'pyramid_session_suite.scripts.sessions']
        + [ini, 'list', 'alice'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert result.stdout == ''
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert 'cannot reach Redis' in result.stderr


def test_named_app_and_setting_overrides(tmp_path, redis_url, app):
    # "main" points at a closed port, "live" at the test server
    down, port = closed_port()
    ini = write_ini(tmp_path / 'two.ini', down, live=redis_url)
    login(app, 'alice')
    assert run(ini, 'counts')[0] == 3
    assert run(f'{ini}#live', 'counts')[1].endswith(
        'total: 1 live session, 1 user\n'
    )
    setting = f'session_suite.redis_url={redis_url}'
    for argv in (
        ['--setting', setting, ini, 'counts'],
        [ini, 'counts', '--setting', setting],
        [f'{ini}#main', 'counts', '--setting', setting],
    ):
        code, out, _ = run(*argv)
        assert code == 0, argv
        assert out.endswith('total: 1 live session, 1 user\n')
    # the override is what the script's application uses
    code, _, err = run(
        f'{ini}#live', 'counts', '--setting', f'session_suite.redis_url={down}'
    )
    assert code == 3 and f'127.0.0.1:{port} ' in err


def test_usage(ini):
    code, out, err = run('--help')
    assert (code, err) == (0, '')
    for command in ('list', 'revoke', 'revoke-all', 'prune', 'counts'):
        assert command in out
    code, out, _ = run(ini, 'revoke', '--help')
    assert code == 0 and 'HANDLE' in out
    code, out, err = run(ini, 'revoke', 'alice')  # no handle
    assert (code, out) == (2, '')
    assert 'usage: session-suite' in err
    assert run(ini, 'frobnicate')[0] == 2
    assert run('--setting', 'no-equals-sign', ini, 'counts')[0] == 2
    assert run(ini, 'list', '')[0] == 2


def test_a_missing_ini_file(tmp_path):
    code, out, err = run(tmp_path / 'nowhere.ini', 'counts')
    assert (code, out) == (2, '')
    assert err.startswith('session-suite: error: cannot load ')
