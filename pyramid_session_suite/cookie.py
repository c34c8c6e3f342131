"""Signed-cookie session namespaces: Pyramid's, with safer defaults."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any
from pyramid.session import BaseCookieSessionFactory, JSONSerializer
from pyramid.settings import asbool

from ._request_cookies import readable_cookies
from .exceptions import SessionTooLarge
from .signing import RotatingSigner

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pyramid.request import Request
    from pyramid.response import Response

log = logging.getLogger(__name__)

#: reissue the cookie when a tenth of the timeout has passed
REISSUE_FRACTION = 10

#: the most a browser keeps of one cookie: its name and value together
MAX_COOKIE_BYTES = 4096

#: the salt of a namespace's signatures, before its cookie name
SALT_PREFIX = 'pyramid_session_suite.cookie.'

#: hash functions refused for signatures, and why
WEAK_HASHES = {
    'md4': 'MD4 is broken',
    'md5': 'MD5 is broken, and RFC 6151 rules HMAC-MD5 out of new designs',
    'md5-sha1': 'it is a legacy TLS 1.0 construction built on MD5',
}


def _seconds(name: str, value: int | str | None) -> int | None:
    """``value`` as whole seconds (an int, or a string as ini files give
    it), or ``None``; a ``ValueError`` naming ``name`` otherwise."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise ValueError(
            f'CookieSessionFactory: {name} must be whole seconds or None, '
            f'not {value!r}'
        ) from None
    if seconds < 0:
        raise ValueError(
            f'CookieSessionFactory: {name} must be 0 or more, not {value!r}'
        )
    return seconds


def _flag(value: bool | str) -> bool:
    """A boolean option, also as an ini string (``'false'`` is false)."""
    return asbool(value) if isinstance(value, str) else bool(value)


def _hash_name(hashalg: str) -> str:
    """``hashalg`` if it names a fixed-size hash fit for signatures; a
    ``ValueError`` that says why otherwise."""
    name = str(hashalg).strip().lower()
    if name in WEAK_HASHES:
        raise ValueError(
            f'CookieSessionFactory: hashalg {hashalg!r} is refused: '
            f'{WEAK_HASHES[name]}; use sha512 (the default), sha256 or '
            'blake2b'
        )
    try:
        digest_size = hashlib.new(name).digest_size
    except (TypeError, ValueError):
        raise ValueError(
            f'CookieSessionFactory: hashalg {hashalg!r} is not a hash '
            'function this Python has (see hashlib.algorithms_available)'
        ) from None
    if not digest_size or name.startswith('shake'):
        raise ValueError(
            f'CookieSessionFactory: hashalg {hashalg!r} has no fixed digest '
            'size, so it cannot sign cookies; use sha512 (the default)'
        )
    return name


def CookieSessionFactory(
    secret: str | bytes | Iterable[str | bytes],
    cookie_name: str = 'session',
    max_age: int | str | None = None,
    path: str = '/',
    domain: str | None = None,
    secure: bool | str = False,
    httponly: bool | str = True,
    samesite: str | None = 'Lax',
    set_on_exception: bool | str = True,
    timeout: int | str | None = 1200,
    reissue_time: int | str | None = None,
    hashalg: str = 'sha512',
    salt: str | None = None,
    serializer: Any = None,
) -> Callable[[Request], Any]:
    """Return Pyramid's :func:`~pyramid.session.SignedCookieSessionFactory`
    session class: the same options, in the same order, with these
    differences:

    - ``secret`` must have at least 32 bytes; several (a sequence, or
      separated by whitespace, newest first) rotate it (see
      :mod:`.signing`);
    - ``salt`` defaults to ``'pyramid_session_suite.cookie.'`` and the
      cookie name, so a cookie of one namespace is never accepted by
      another (Pyramid: ``'pyramid.session.'`` for every cookie; pass that
      to keep accepting cookies Pyramid signed);
    - ``httponly`` defaults to true (Pyramid: false);
    - the cookie is reissued only when a tenth of ``timeout`` has passed
      (Pyramid: on every access); ``reissue_time`` set to a number of
      seconds still decides, but ``None`` means this default (Pyramid:
      never reissue);
    - ``hashalg`` refuses MD4 and MD5, and anything that is not a
      fixed-size hash; ``timeout``, ``reissue_time`` and ``max_age`` may be
      strings of whole seconds, ``secure``, ``httponly`` and
      ``set_on_exception`` ini booleans (``'false'``) as well;
    - ``invalidate()`` deletes the cookie (Pyramid sends an empty session);
    - a write that would make the cookie bigger than a browser keeps
      (4096 bytes, name and value) raises :class:`.SessionTooLarge`, a 413
      (Pyramid raises ``ValueError`` when the response is made: a 500);
      a value grown in place is found when the cookie is made, and the
      browser keeps its previous cookie. Deletions carry the cookie's
      attributes.
    """
    timeout = _seconds('timeout', timeout)
    if reissue_time is None:
        if timeout:
            reissue_time = max(1, timeout // REISSUE_FRACTION)
    else:
        reissue_time = _seconds('reissue_time', reissue_time)
    max_age = _seconds('max_age', max_age)
    if salt is None:
        salt = SALT_PREFIX + cookie_name
    signer = RotatingSigner(
        secret,
        salt,
        _hash_name(hashalg),
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
        secure=_flag(secure),
        httponly=_flag(httponly),
        samesite=samesite,
        set_on_exception=_flag(set_on_exception),
    )

    class CookieSession(base):  # type: ignore[valid-type, misc]
        backend: str = 'cookie'

        #: ``True`` once :meth:`invalidate` was called in this request
        invalidated: bool = False

        def __init__(self, request: Request) -> None:
            cookies = readable_cookies(request)
            base.__init__(self, request)
            value: str | bytes | None = cookies.get(cookie_name)
            if isinstance(value, str):
                value = value.encode('utf-8')
            if (
                value is not None
                and not self.new
                and signer.signed_by_older(value)
            ):
                self.changed()  # signed again with the newest secret

        def invalidate(self) -> None:
            base.invalidate(self)
            self.invalidated = True
            self.changed()

        def __setitem__(self, key: Any, value: Any) -> None:
            base.__setitem__(self, key, value)
            self._check_size()

        def setdefault(self, key: Any, default: Any = None) -> Any:
            value = base.setdefault(self, key, default)
            self._check_size()
            return value

        def update(self, *args: Any, **kw: Any) -> None:
            base.update(self, *args, **kw)
            self._check_size()

        def flash(
            self, msg: Any, queue: str = '', allow_duplicate: bool = True
        ) -> None:
            base.flash(self, msg, queue, allow_duplicate)
            self._check_size()

        def _size(self) -> int:
            value = (self.accessed, self.created, dict(self))
            return len(signer.dumps(value))

        def _check_size(self) -> None:
            size = self._size()
            if size > room:
                raise SessionTooLarge(cookie_name, size, room)

        def _set_cookie(self, response: Response) -> bool:
            request = self.request
            if (
                not self._cookie_on_exception
                and getattr(request, 'exception', None) is not None
            ):
                return False  # set_on_exception=False: no cookie change
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
            saved: bool = base._set_cookie(self, response)
            return saved

    return CookieSession
