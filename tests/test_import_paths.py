"""Import paths of earlier releases keep working after the package's
modules moved into one sub-package per feature."""

import importlib
import pytest

MOVED = {  # in pyramid_session_suite: where it was, where it is
    'redis_session': 'redis.session',
    'stored': 'redis.stored',
    'clients': 'redis.clients',
    'deadline': 'redis.deadline',
    'locking': 'redis.locking',
    'login_records': 'redis.login_records',
    'index': 'user_index.store',
    'client_info': 'user_index.client_info',
    'user_index_views': 'user_index.views',
}


@pytest.mark.parametrize(('old', 'new'), sorted(MOVED.items()))
def test_an_old_import_path_is_the_moved_module(old, new):
    moved = importlib.import_module(f'pyramid_session_suite.{new}')
    assert importlib.import_module(f'pyramid_session_suite.{old}') is moved


def test_the_names_documented_before_the_move_import_from_their_old_paths():
    from pyramid_session_suite.clients import redis_client
    from pyramid_session_suite.deadline import spent_seconds
    from pyramid_session_suite.index import (
        SessionEntry,
        UserIndex,
        user_tag,
        userid_of_tag,
    )
    from pyramid_session_suite.locking import lock_key
    from pyramid_session_suite.login_records import (
        handle,
        redis_key,
        remembered,
        split_id,
    )
    from pyramid_session_suite.redis import RedisSessionFactory
    from pyramid_session_suite.redis_session import (
        RedisSession,
        json_dumps,
        json_loads,
    )
    from pyramid_session_suite.stored import ended, header, pack, unpack
    from pyramid_session_suite.user_index import SessionTracker, UserSessions

    assert all(
        callable(name)
        for name in (
            redis_client,
            spent_seconds,
            SessionEntry,
            UserIndex,
            user_tag,
            userid_of_tag,
            lock_key,
            handle,
            redis_key,
            remembered,
            split_id,
            RedisSessionFactory,
            RedisSession,
            json_dumps,
            json_loads,
            ended,
            header,
            pack,
            unpack,
            SessionTracker,
            UserSessions,
        )
    )


def test_the_views_include_by_their_old_path():
    from pyramid.config import Configurator
    from pyramid.exceptions import ConfigurationError

    config = Configurator()
    config.include('pyramid_session_suite.user_index_views')
    with pytest.raises(ConfigurationError, match='needs the user index'):
        config.commit()
