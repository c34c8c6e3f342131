"""This import path keeps working: the module is
:mod:`pyramid_session_suite.redis.locking`."""

import sys

from .redis import locking as _moved
from .redis.locking import *  # noqa: F403

# the same module under both names: its private names and monkeypatching
# work through either path
sys.modules[__name__] = _moved
