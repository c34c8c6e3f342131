from tests.test_sessions_script import *  # noqa
from pyramid_session_suite.interfaces import IUserIndex

def test_exp(ini, app, alice_and_bob, redis_client):
    firefox, iphone, bob = alice_and_bob
    bob2 = login(app, 'bob', ua=IPHONE)
    print(sorted(redis_client.keys('*')))
    hb, hb2 = handle_of(bob), handle_of(bob2)
    print(hb, hb2, handle_of(iphone))
    redis_client.delete(f'session_suite:main:{{Ym9i}}:{hb2.split(".")[0]}')
    redis_client.delete(f'session_suite:main:{{Ym9i}}:{hb.split(".")[0]}')
    print(run(ini, 'prune'))
    print(sorted(redis_client.keys('*')))
    print(redis_client.zrange('session_suite:users:{Ym9i}:i', 0, -1))
    print(run(ini, 'prune', 'bob'))
    print(sorted(redis_client.keys('*')))
    print(run(ini, 'revoke-all', 'alice'))
    print(sorted(redis_client.keys('*')))
    print(run(ini, 'prune'))
    print(run(ini, 'counts'))
