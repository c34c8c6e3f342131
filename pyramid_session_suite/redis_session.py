"""This import path keeps working: the module is
:mod:`pyramid_session_suite.redis.session`."""

import sys

from .redis import session as _moved
from .redis.session import *  # noqa: F403

# the same module under both names: its private names and monkeypatching
# work through either path
sys.modules[__name__] = _moved
