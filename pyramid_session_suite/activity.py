"""What the suite did during a request, for the debug toolbar panel.

Features call :func:`record` on rare transitions (a session created, a
write refused, a token redeemed …); the list lives in the WSGI environ and
costs nothing when nothing happens.
"""

ACTIVITY_KEY = 'session_suite.activity'


def record(environ, feature, action, **details):
    """Note that ``feature`` did ``action`` during this request."""
    entry = {'feature': feature, 'action': action, 'details': details}
    activity = environ.get(ACTIVITY_KEY)
    if activity is None:
        environ[ACTIVITY_KEY] = [entry]
    else:
        activity.append(entry)


def recorded(environ):
    """Return what was recorded during the request of ``environ``."""
    return list(environ.get(ACTIVITY_KEY, ()))
