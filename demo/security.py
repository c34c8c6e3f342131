"""Who is signed in: the demo's users and its security policy.

DEMO ONLY: the users below have their passwords in plain text in the source
code, so that anyone trying the demo can sign in. A real application keeps
password hashes (e.g. with ``argon2-cffi`` or ``bcrypt``) in a database.
"""

import hmac
from pyramid.authentication import SessionAuthenticationHelper
from pyramid.security import Allowed, Denied

#: DEMO ONLY: user id -> password, shown on the sign-in page
DEMO_USERS = {
    'alice': 'alice',
    'bob': 'bob',
    'admin': 'admin',
}

#: the users who may see and revoke everybody's sessions
ADMINS = frozenset({'admin'})

#: the permission of the user index's admin pages
#: (``session_suite.user_index.admin_permission``, left at its default)
ADMIN_PERMISSION = 'session_suite.admin'


def check_password(userid, password):
    """Whether ``password`` is ``userid``'s (DEMO ONLY, see above)."""
    expected = DEMO_USERS.get(userid)
    if expected is None or not isinstance(password, str):
        return False
    return hmac.compare_digest(expected.encode(), password.encode())


class DemoSecurityPolicy:
    """The user id lives in ``request.session`` (the Redis ``main``
    namespace); administrators have the admin permission, and any
    signed-in user has every other permission."""

    def __init__(self):
        self.helper = SessionAuthenticationHelper()

    def identity(self, request):
        return self.authenticated_userid(request)

    def authenticated_userid(self, request):
        userid = self.helper.authenticated_userid(request)
        # a session of a user who no longer exists signs nobody in
        return userid if userid in DEMO_USERS else None

    def permits(self, request, context, permission):
        userid = self.authenticated_userid(request)
        if permission == ADMIN_PERMISSION:
            if userid in ADMINS:
                return Allowed('an administrator')
            return Denied('not an administrator')
        if userid is not None:
            return Allowed('signed in')
        return Denied('anonymous')

    def remember(self, request, userid, **kw):
        return self.helper.remember(request, userid, **kw)

    def forget(self, request, **kw):
        return self.helper.forget(request, **kw)
