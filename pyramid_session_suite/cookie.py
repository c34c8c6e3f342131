"""Signed-cookie session namespaces: Pyramid's, with safer defaults."""

from pyramid.session import SignedCookieSessionFactory

from .settings import check_secret

#: reissue the cookie when a tenth of the timeout has passed
REISSUE_FRACTION = 10


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

    - ``secret`` must have at least 32 bytes;
    - the signature is salted with the cookie name, so a cookie of one
      namespace is never accepted by another;
    - ``invalidate()`` deletes the cookie (Pyramid sends an empty session);
    - the cookie is reissued only when a tenth of ``timeout`` has passed
      (Pyramid: on every access), unless ``reissue_time`` says otherwise;
    - ``SameSite=Lax`` and SHA-512 signatures by default.
    """
    check_secret(secret)
    if reissue_time is None and timeout:
        reissue_time = max(1, timeout // REISSUE_FRACTION)
    base = SignedCookieSessionFactory(
        secret,
        salt='pyramid_session_suite.cookie.' + cookie_name,
        hashalg='sha512',
        cookie_name=cookie_name,
        timeout=timeout,
        reissue_time=reissue_time,
        max_age=max_age,
        path=path,
        domain=domain,
        secure=secure,
        httponly=httponly,
        samesite=samesite,
        serializer=serializer,
    )

    class CookieSession(base):
        backend = 'cookie'

        #: ``True`` once :meth:`invalidate` was called in this request
        invalidated = False

        def invalidate(self):
            base.invalidate(self)
            self.invalidated = True
            self.changed()

        def _set_cookie(self, response):
            if self.invalidated and not dict.__len__(self):
                response.delete_cookie(
                    self._cookie_name,
                    path=self._cookie_path,
                    domain=self._cookie_domain,
                )
                return True
            return base._set_cookie(self, response)

    return CookieSession
