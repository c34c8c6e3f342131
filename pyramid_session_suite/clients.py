"""This import path keeps working: the module is
:mod:`pyramid_session_suite.redis.clients`."""

import sys

from .redis import clients as _moved
from .redis.clients import *  # noqa: F403

# the same module under both names: its private names and monkeypatching
# work through either path
sys.modules[__name__] = _moved
