"""Test-only stand-in for ``pyramid_session_multi.debugtoolbar``: our
panel, under the include path upstream's panel tests use."""

from pyramid_session_suite.debugtoolbar import includeme

__all__ = ['includeme']
