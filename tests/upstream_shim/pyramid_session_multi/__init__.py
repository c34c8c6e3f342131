"""Test-only stand-in for ``pyramid_session_multi``: the names its 0.4.0
API exports, taken from pyramid_session_suite.

Only ``tests/test_upstream_compat.py`` puts this folder on ``sys.path``,
to run upstream's own tests against our package. It is never installed.
"""

from pyramid_session_suite import (
    ISessionMultiManagerConfig,
    SessionMultiManager,
    UnregisteredSession,
    includeme,
    new_session_multi,
    register_session_factory,
)

__all__ = [
    'ISessionMultiManagerConfig',
    'SessionMultiManager',
    'UnregisteredSession',
    'includeme',
    'new_session_multi',
    'register_session_factory',
]
