"""Benchmark: bare Pyramid, ``pyramid_session_multi`` with
``pyramid_session_redis``, and ``pyramid_session_suite`` (plain, and with
its per-user index and session policy), through in-process WSGI calls
(beside the physical limit of a read and a write, with both of redis-py's
reply parsers) and over HTTP (loaded by wrk, when installed); a profile of
the suite's read and write paths; the listing of a user's sessions;
overlapping writers of one session (the tabs scenario); and the Redis
memory of the sessions. Run it with ``python -m bench``."""

from .cli import main
from .runner import run

__all__ = ['main', 'run']
