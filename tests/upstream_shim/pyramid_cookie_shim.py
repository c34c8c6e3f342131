"""Test-only stand-in for ``pyramid.session.SignedCookieSessionFactory``
in Pyramid's own cookie-session tests: our ``CookieSessionFactory``, given
Pyramid's defaults where ours differ (those tests check Pyramid's
defaults), every other option passed through as those tests give it.

Only ``tests/test_upstream_compat.py`` puts this folder on ``sys.path``.
"""

from pyramid_session_suite import CookieSessionFactory

#: Pyramid's defaults for the options whose default differs here
PYRAMID_DEFAULTS = {
    'httponly': False,
    'reissue_time': 0,
    'salt': 'pyramid.session.',
}


def SignedCookieSessionFactory(secret, **options):
    return CookieSessionFactory(secret, **{**PYRAMID_DEFAULTS, **options})
