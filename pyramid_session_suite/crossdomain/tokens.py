"""Cross-domain hand-off tokens: encrypted, destination-bound, short-lived,
single-use.

A token carries a session id from the site that has it (``src``) to one
other site of the group (``dst``)::

    0x01 | nonce (12) | AES-256-GCM(payload) + tag (16), base64url

The key is derived with HKDF-SHA256 from a dedicated secret; the
destination is authenticated data, so a token opens only on the host it was
made for. The payload holds the session id, ``src``, ``dst``, the issue
time, a unique id (claimed once, in Redis, by the destination) and, for the
redirect flows, a digest of the state cookie of the browser that asked.

Errors form a small tree, like itsdangerous': catch :class:`TokenError`
for all of them, or a subclass; each has a ``reason`` code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import time
from typing import TYPE_CHECKING, Any
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._settings import check_secret
from ..exceptions import WeakSecret

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

VERSION = 1
_AAD = b'pyramid_session_suite/crossdomain/v1|'
_NONCE = 12
#: a token longer than this is not even decoded
MAX_TOKEN_LENGTH = 2048
_TOKEN_RE = re.compile(r'^[A-Za-z0-9_-]+$')


class TokenError(Exception):
    """A token was refused; ``reason`` says why."""

    reason: str = 'invalid'

    #: ``True`` once the views logged and announced the refusal (unset
    #: until then: read it with ``getattr``)
    reported: bool

    def __init__(self, message: str = '', reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class MalformedToken(TokenError):
    reason = 'malformed'


class UnknownVersion(TokenError):
    reason = 'version'


class BadSignature(TokenError):
    """Tampered, made with another key, or made for another destination."""

    reason = 'bad-tag'


class BadPayload(TokenError):
    reason = 'payload'


class WrongDestination(TokenError):
    reason = 'wrong-destination'


class BadSource(TokenError):
    reason = 'bad-source'


class ExpiredToken(TokenError):
    reason = 'expired'


class FutureToken(TokenError):
    reason = 'from-the-future'


class StateMismatch(TokenError):
    """The browser redeeming it is not the one that asked for it."""

    reason = 'state-mismatch'


class WrongFlow(TokenError):
    reason = 'wrong-flow'


class ReplayedToken(TokenError):
    reason = 'replayed'


def derive_key(secret: str | bytes) -> bytes:
    """The AES-256 key of a secret (HKDF-SHA256)."""
    if isinstance(secret, str):
        secret = secret.encode('utf-8')
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b'pyramid_session_suite',
        info=b'cross-domain-session/v1',
    ).derive(secret)


def state_digest(state: str) -> str:
    """What a token keeps of a browser's state cookie."""
    return hashlib.sha256(state.encode('utf-8')).hexdigest()[:32]


def _hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes: its ``{tag}``, else all of
    it."""
    start = key.find('{')
    end = key.find('}', start + 1)
    if start >= 0 and end > start + 1:
        return key[start + 1 : end]
    return key


def _issue_time(payload: Mapping[str, Any]) -> float:
    """The issue time of a token's payload, in epoch seconds."""
    issued = payload['iat']
    if isinstance(issued, (int, float)) and not isinstance(issued, bool):
        try:
            issued = float(issued)
        except OverflowError:  # an int no float can hold
            issued = math.inf
        if math.isfinite(issued):
            return issued
    raise MalformedToken('the issue time is not a number')


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


class TokenCodec:
    """Makes and opens tokens for the sites of a group.

    ``secrets`` (newest first) share the group's key material: tokens are
    made with the first and opened with any, so secrets can be rotated.
    ``timeout`` is how long a token lives, ``skew`` the clock difference
    tolerated between sites (seconds); ``clock`` returns epoch seconds.
    """

    def __init__(
        self,
        secrets: Sequence[str | bytes],
        sites: Iterable[str],
        timeout: float = 30,
        skew: float = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secrets:
            raise WeakSecret('a secret is required')
        for secret in secrets:
            check_secret(secret)
        self.ciphers = [AESGCM(derive_key(s)) for s in secrets]
        self.sites = frozenset(sites)
        self.timeout = timeout
        self.skew = skew
        self.clock = clock

    def mint(
        self,
        session_id: str,
        src: str,
        dst: str,
        state: str | None = None,
        flow: str = 'redirect',
    ) -> str:
        """Return a token that hands ``session_id`` from ``src`` to
        ``dst``; redirect-flow tokens are bound to ``state``."""
        payload = {
            'sid': session_id,
            'src': src,
            'dst': dst,
            'iat': round(self.clock(), 3),
            'jti': _b64encode(os.urandom(16)),
            'flow': flow,
            'st': state_digest(state) if state else '',
        }
        nonce = os.urandom(_NONCE)
        data = json.dumps(payload, separators=(',', ':')).encode('utf-8')
        sealed = self.ciphers[0].encrypt(nonce, data, _AAD + dst.encode())
        return _b64encode(bytes([VERSION]) + nonce + sealed)

    def open(
        self,
        token: str | None,
        dst: str,
        state: str | None = None,
        flow: str = 'redirect',
    ) -> dict[str, Any]:
        """Return the payload of ``token`` redeemed at ``dst``, or raise a
        :class:`TokenError`. Checks everything but single use (see
        :meth:`claim_key`)."""
        if (
            not isinstance(token, str)
            or not 0 < len(token) <= MAX_TOKEN_LENGTH
        ):
            raise MalformedToken('no token, or too long')
        if not _TOKEN_RE.match(token):
            raise MalformedToken('not base64url')
        try:
            raw = _b64decode(token)
        except ValueError:
            raise MalformedToken('not base64url') from None
        if len(raw) < 1 + _NONCE + 16:
            raise MalformedToken('too short')
        if raw[0] != VERSION:
            raise UnknownVersion(f'version {raw[0]}')
        nonce, sealed = raw[1 : 1 + _NONCE], raw[1 + _NONCE :]
        data: bytes | None = None
        for cipher in self.ciphers:
            try:
                data = cipher.decrypt(nonce, sealed, _AAD + dst.encode())
                break
            except InvalidTag:
                continue
        if data is None:
            raise BadSignature('tampered, or for another destination')
        try:
            payload: dict[str, Any] = json.loads(data)
            fields = ('sid', 'src', 'dst', 'iat', 'jti', 'flow', 'st')
            values = [payload[name] for name in fields]
        except (ValueError, KeyError, TypeError):
            raise BadPayload('unreadable payload') from None
        if not all(isinstance(v, str) for v in values[:3] + values[4:]):
            raise BadPayload('unreadable payload')
        if payload['dst'] != dst or dst not in self.sites:
            raise WrongDestination(payload['dst'])
        if payload['src'] not in self.sites or payload['src'] == dst:
            raise BadSource(payload['src'])
        age = self.clock() - _issue_time(payload)
        if age < -self.skew:
            raise FutureToken(f'issued {-age:.1f} s ahead')
        if age > self.timeout + self.skew:
            raise ExpiredToken(f'{age:.1f} s old')
        if payload['flow'] != flow:
            raise WrongFlow(payload['flow'])
        if flow == 'redirect':
            if not state or payload['st'] != state_digest(state):
                raise StateMismatch('not the browser that asked')
        return payload

    def claim_key(self, payload: Mapping[str, Any], prefix: str) -> str:
        """The Redis key that marks the token as used: in the hash slot of
        the session's key, so that one script checks both on a cluster."""
        return f'{prefix}{{{_hash_tag(payload["sid"])}}}:{payload["jti"]}'

    @property
    def claim_ttl(self) -> int:
        """How long a claim must be kept: as long as the token may live."""
        return int(self.timeout + 2 * self.skew) + 1
