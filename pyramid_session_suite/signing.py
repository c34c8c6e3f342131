"""Cookie signatures whose secrets can be rotated without logging anyone
out.

Every secret setting takes several secrets, newest first, separated by
whitespace; a Python factory takes one secret or a sequence of them.
Cookies are always signed with the newest; a cookie signed with an older
one is accepted, and its namespace signs it again with the newest the next
time it answers; a cookie signed with a secret no longer listed is ignored
like a forged one.
"""

from collections.abc import Iterable
import threading
from typing import Any, overload
from webob.cookies import SignedSerializer

from ._settings import check_secret


@overload
def secret_list(
    secrets: str | Iterable[str] | None, name: str = 'secret'
) -> list[str]: ...


@overload
def secret_list(
    secrets: str | bytes | Iterable[str | bytes] | None, name: str = 'secret'
) -> list[str | bytes]: ...


def secret_list(
    secrets: str | bytes | Iterable[str | bytes] | None, name: str = 'secret'
) -> list[str] | list[str | bytes]:
    """The secrets of ``secrets`` (one secret, or a sequence of them newest
    first), each checked; raise :class:`.WeakSecret` naming ``name``."""
    if isinstance(secrets, (str, bytes)):
        secrets = [secrets]
    secrets = [s for s in secrets or () if s]
    if not secrets:
        check_secret(None, name)
    for secret in secrets:
        check_secret(secret, name)
    return secrets


class RotatingSigner:
    """A :class:`webob.cookies.SignedSerializer` of several secrets: signs
    with the first, verifies with any (the first first).

    With ``cache`` (for values that cannot change, such as session ids),
    the last ``cache`` cookie values verified with the newest secret are
    remembered: a browser's next request does not verify its cookie
    again."""

    def __init__(
        self,
        secrets: str | bytes | Iterable[str | bytes],
        salt: str,
        hashalg: str = 'sha512',
        serializer: Any = None,
        cache: int = 0,
    ) -> None:
        self.signers = [
            SignedSerializer(secret, salt, hashalg, serializer=serializer)
            for secret in secret_list(secrets)
        ]
        self._newest = self.signers[0]
        self._older = self.signers[1:]
        self._last = threading.local()
        self._cache_size = cache
        self._verified: dict[bytes, Any] = {}

    def dumps(self, value: Any) -> bytes:
        data: bytes = self._newest.dumps(value)
        return data

    def loads(self, data: bytes) -> Any:
        verified = self._verified.get(data)
        if verified is not None:
            return verified
        try:
            value = self._newest.loads(data)
        except ValueError:
            pass
        else:
            if self._cache_size:
                if len(self._verified) >= self._cache_size:
                    self._verified.clear()
                self._verified[data] = value
            return value
        for signer in self._older:
            try:
                value = signer.loads(data)
            except ValueError:
                continue
            self._last.data = data
            return value
        raise ValueError('invalid signature')

    def signed_by_older(self, data: bytes) -> bool:
        """Whether ``data``, just loaded in this thread, was signed with a
        secret other than the newest."""
        return bool(getattr(self._last, 'data', None) == data)
