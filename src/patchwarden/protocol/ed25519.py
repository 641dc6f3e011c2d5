"""Ed25519 signatures per RFC 8032, in pure Python (stdlib only).

The agent must verify the server's job signatures without third-party
packages, so this is the RFC's reference arithmetic: points in extended
twisted-Edwards coordinates (X:Y:Z:T with x = X/Z, y = Y/Z, xy = T/Z), the
cofactorless check [S]B == R + [k]A that OpenSSL and `cryptography` use, and
strict decoding: a non-canonical S (>= L), a y coordinate >= p, or a point
that is not on the curve is refused, never "repaired".

It is not constant-time. Verification only handles public data; `sign` is
here for tests and must not be used with a secret that matters.
"""

from __future__ import annotations

import hashlib
from typing import Optional, Tuple

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # the order of the base point
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)  # a square root of -1 mod p

Point = Tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)

KEY_LENGTH = 32
SIGNATURE_LENGTH = 64


def _sha512_int(data: bytes) -> int:
    return int.from_bytes(hashlib.sha512(data).digest(), "little")


def _add(p1: Point, p2: Point) -> Point:
    # RFC 8032 section 5.1.4: complete addition, also right for doubling.
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _multiply(scalar: int, point: Point) -> Point:
    result: Point = (0, 1, 1, 0)  # the neutral element
    while scalar > 0:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _equal(p1: Point, p2: Point) -> bool:
    # x1/z1 == x2/z2 and y1/z1 == y2/z2, without inversions.
    x1, y1, z1, _ = p1
    x2, y2, z2, _ = p2
    return (x1 * z2 - x2 * z1) % P == 0 and (y1 * z2 - y2 * z1) % P == 0


def _recover_x(y: int, sign: int) -> Optional[int]:
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0  # x = 0 has no negative: "-0" is not canonical
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None  # not a square: no point with this y
    if (x & 1) != sign:
        x = P - x
    return x


_GY = 4 * pow(5, P - 2, P) % P
_GX = _recover_x(_GY, 0)
assert _GX is not None
BASE: Point = (_GX, _GY, 1, _GX * _GY % P)


def _compress(point: Point) -> bytes:
    x, y, z, _ = point
    inverse = pow(z, P - 2, P)
    x, y = x * inverse % P, y * inverse % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decompress(data: bytes) -> Optional[Point]:
    if len(data) != 32:
        return None
    value = int.from_bytes(data, "little")
    sign = value >> 255
    y = value & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def _secret_scalar(seed: bytes) -> Tuple[int, bytes]:
    digest = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= (1 << 254) - 8  # clear the 3 low bits and bit 255
    scalar |= 1 << 254
    return scalar, digest[32:]


def public_key(secret_seed: bytes) -> bytes:
    """The public key of a 32-byte secret seed."""
    if len(secret_seed) != KEY_LENGTH:
        raise ValueError("an Ed25519 secret seed is 32 bytes")
    scalar, _ = _secret_scalar(secret_seed)
    return _compress(_multiply(scalar, BASE))


def sign(secret_seed: bytes, message: bytes) -> bytes:
    """The 64-byte signature of `message` (for tests: not constant-time)."""
    if len(secret_seed) != KEY_LENGTH:
        raise ValueError("an Ed25519 secret seed is 32 bytes")
    scalar, prefix = _secret_scalar(secret_seed)
    public = _compress(_multiply(scalar, BASE))
    r = _sha512_int(prefix + message) % L
    encoded_r = _compress(_multiply(r, BASE))
    k = _sha512_int(encoded_r + public + message) % L
    s = (r + k * scalar) % L
    return encoded_r + s.to_bytes(32, "little")


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` by
    `public_key`. Any malformed input is simply False, never an exception."""
    try:
        if not all(isinstance(v, (bytes, bytearray)) for v in (public_key, message, signature)):
            return False
        public_key, message, signature = bytes(public_key), bytes(message), bytes(signature)
        if len(public_key) != KEY_LENGTH or len(signature) != SIGNATURE_LENGTH:
            return False
        a = _decompress(public_key)
        if a is None:
            return False
        encoded_r = signature[:32]
        r = _decompress(encoded_r)
        if r is None:
            return False
        s = int.from_bytes(signature[32:], "little")
        if s >= L:  # malleability: only the canonical S is accepted
            return False
        k = _sha512_int(encoded_r + public_key + message) % L
        return _equal(_multiply(s, BASE), _add(r, _multiply(k, a)))
    except Exception:  # the contract is "never raises"
        return False
