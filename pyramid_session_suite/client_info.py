"""This import path keeps working: the module is
:mod:`pyramid_session_suite.user_index.client_info`."""

import sys

from .user_index import client_info as _moved
from .user_index.client_info import *  # noqa: F403

# the same module under both names: its private names and monkeypatching
# work through either path
sys.modules[__name__] = _moved
