"""What the suite did during a request, for the debug toolbar panel.

Features call :func:`record` on rare transitions (a session created, a
write refused, a token redeemed …); the list lives in the WSGI environ and
costs nothing when nothing happens.
"""

from collections.abc import Mapping, MutableMapping
from typing import Any

ACTIVITY_KEY = 'session_suite.activity'


def record(
    environ: MutableMapping[str, Any],
    feature: str,
    action: str,
    **details: Any,
) -> None:
    """Note that ``feature`` did ``action`` during this request."""
    entry = {'feature': feature, 'action': action, 'details': details}
    activity = environ.get(ACTIVITY_KEY)
    if activity is None:
        environ[ACTIVITY_KEY] = [entry]
    else:
        activity.append(entry)


def recorded(environ: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return what was recorded during the request of ``environ``."""
    return list(environ.get(ACTIVITY_KEY, ()))
