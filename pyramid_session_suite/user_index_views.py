"""This import path keeps working: the module is
:mod:`pyramid_session_suite.user_index.views`."""

import sys

from .user_index import views as _moved
from .user_index.views import *  # noqa: F403

# the same module under both names: its private names and monkeypatching
# work through either path
sys.modules[__name__] = _moved
