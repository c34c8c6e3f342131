"""Signed-cookie session namespaces: Pyramid's, with safer defaults."""

import logging
from pyramid.session import BaseCookieSessionFactory, JSONSerializer

from .exceptions import SessionTooLarge
from .request_cookies import readable_cookies
from .signing import RotatingSigner

log = logging.getLogger(__name__)

#: reissue the cookie when a tenth of the timeout has passed
REISSUE_FRACTION = 10

#: the most a browser keeps of one cookie: its name and value together
MAX_COOKIE_BYTES = 4096


def CookieSessionFactory(
    secret,
    *,
    cookie_name='session',
    timeout=1200,
    reissue_time=None,
    max_age=None,
    path='/',
    domain=None,
    secure=False,
    httponly=True,
    samesite='Lax',
    serializer=None,
):
    """Return Pyramid's :func:`~pyramid.session.SignedCookieSessionFactory`
    session class, with these differences:

    - ``secret`` must have at least 32 bytes; several (a sequence, or
      separated by whitespace, newest first) rotate it (see
      :mod:`.signing`);
    - the signature is salted with the cookie name, so a cookie of one
      namespace is never accepted by another;
    - ``invalidate()`` deletes the cookie (Pyramid sends an empty session);
    - the cookie is reissued only when a tenth of ``timeout`` has passed
      (Pyramid: on every access), unless ``reissue_time`` says otherwise;
    - ``SameSite=Lax`` and SHA-512 signatures by default;
    - a write that would make the cookie bigger than a browser keeps
      (4096 bytes, name and value) raises :class:`.SessionTooLarge`, a 413
      (Pyramid raises ``ValueError`` when the response is made: a 500);
      a value grown in place is found when the cookie is made, and the
      browser keeps its previous cookie. Deletions carry the cookie's
      attributes.
    """
    if reissue_time is None and timeout:
        reissue_time = max(1, timeout // REISSUE_FRACTION)
    signer = RotatingSigner(
        secret,
        'pyramid_session_suite.cookie.' + cookie_name,
        'sha512',
        serializer=serializer or JSONSerializer(),
    )
    # Pyramid refuses a value of more than 4064 bytes
    room = min(4064, MAX_COOKIE_BYTES - len(cookie_name) - 1)
    base = BaseCookieSessionFactory(
        signer,
        cookie_name=cookie_name,
        timeout=timeout,
        reissue_time=reissue_time,
        max_age=max_age,
        path=path,
        domain=domain,
        secure=secure,
        httponly=httponly,
        samesite=samesite,
    )

    class CookieSession(base):
        backend = 'cookie'

        #: ``True`` once :meth:`invalidate` was called in this request
        invalidated = False

        def __init__(self, request):
            cookies = readable_cookies(request)
            base.__init__(self, request)
            value = cookies.get(cookie_name)
            if (
                value is not None
                and not self.new
                and signer.signed_by_older(value.encode('utf-8'))
            ):
                self.changed()  # signed again with the newest secret

        def invalidate(self):
            base.invalidate(self)
            self.invalidated = True
            self.changed()

        def __setitem__(self, key, value):
            base.__setitem__(self, key, value)
            self._check_size()

        def setdefault(self, key, default=None):
            value = base.setdefault(self, key, default)
            self._check_size()
            return value

        def update(self, *args, **kw):
            base.update(self, *args, **kw)
            self._check_size()

        def flash(self, msg, queue='', allow_duplicate=True):
            base.flash(self, msg, queue, allow_duplicate)
            self._check_size()

        def _size(self):
            value = (self.accessed, self.created, dict(self))
            return len(signer.dumps(value))

        def _check_size(self):
            size = self._size()
            if size > room:
                raise SessionTooLarge(cookie_name, size, room)

        def _set_cookie(self, response):
            if self.invalidated and not dict.__len__(self):
                response.set_cookie(
                    self._cookie_name,
                    None,
                    path=self._cookie_path,
                    domain=self._cookie_domain,
                    secure=self._cookie_secure,
                    httponly=self._cookie_httponly,
                    samesite=self._cookie_samesite,
                )
                return True
            size = self._size()
            if size > room:
                log.error(
                    'session cookie %r not saved: %d bytes, too big for a '
                    'browser (at most %d)',
                    cookie_name,
                    size,
                    room,
                )
                return False
            return base._set_cookie(self, response)

    return CookieSession
