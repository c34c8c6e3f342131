"""Benchmark: bare Pyramid, ``pyramid_session_multi`` with
``pyramid_session_redis``, and ``pyramid_session_suite``, through
in-process WSGI calls. Run it with ``python -m bench``."""

from .cli import main
from .runner import run

__all__ = ['main', 'run']
