"""This import path keeps working: the module is
:mod:`pyramid_session_suite.user_index.store`."""

import sys

from .user_index import store as _moved
from .user_index.store import *  # noqa: F403

# the same module under both names: its private names and monkeypatching
# work through either path
sys.modules[__name__] = _moved
