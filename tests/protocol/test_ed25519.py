"""The pure-Python Ed25519 against RFC 8032's test vectors and `cryptography`."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from patchwarden.protocol import ed25519

# RFC 8032 section 7.1: (secret seed, public key, message, signature), hex.
VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("seed", "public", "message", "signature"), VECTORS)
def test_rfc8032_vectors(seed: str, public: str, message: str, signature: str) -> None:
    seed_b, public_b = bytes.fromhex(seed), bytes.fromhex(public)
    message_b, signature_b = bytes.fromhex(message), bytes.fromhex(signature)
    assert ed25519.public_key(seed_b) == public_b
    assert ed25519.sign(seed_b, message_b) == signature_b
    assert ed25519.verify(public_b, message_b, signature_b)
    assert not ed25519.verify(public_b, message_b + b"x", signature_b)
    # The same vectors through OpenSSL: the reference agrees with the library.
    key = Ed25519PrivateKey.from_private_bytes(seed_b)
    assert key.sign(message_b) == signature_b


def _pair() -> tuple[bytes, bytes, bytes]:
    _seed, public, message, signature = VECTORS[1]
    return bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)


def test_non_canonical_s_is_refused() -> None:
    public, message, signature = _pair()
    s = int.from_bytes(signature[32:], "little")
    forged = signature[:32] + (s + ed25519.L).to_bytes(32, "little")
    assert not ed25519.verify(public, message, forged)


def test_bad_point_encodings_are_refused() -> None:
    public, message, signature = _pair()
    y_too_big = (ed25519.P + 1).to_bytes(32, "little")  # y >= p: non-canonical
    assert not ed25519.verify(y_too_big, message, signature)
    assert not ed25519.verify(public, message, y_too_big + signature[32:])
    # y = 2 is not on the curve (x^2 is not a square).
    not_on_curve = (2).to_bytes(32, "little")
    assert ed25519._decompress(not_on_curve) is None
    assert not ed25519.verify(not_on_curve, message, signature)
    # x = 0 with the sign bit set ("-0") is not canonical.
    minus_zero = (1 | (1 << 255)).to_bytes(32, "little")
    assert not ed25519.verify(minus_zero, message, signature)


@pytest.mark.parametrize(
    ("public", "message", "signature"),
    [
        (b"", b"", b""),
        (b"\x00" * 31, b"m", b"\x00" * 64),
        (b"\x00" * 32, b"m", b"\x00" * 63),
        ("not bytes", b"m", b"\x00" * 64),
        (b"\x00" * 32, None, b"\x00" * 64),
        (b"\xff" * 32, b"m", b"\xff" * 64),
    ],
)
def test_malformed_input_is_false_not_an_error(
    public: object, message: object, signature: object
) -> None:
    assert ed25519.verify(public, message, signature) is False  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    message=st.binary(max_size=200),
    bit=st.integers(0, 511),
)
def test_signatures_from_cryptography_verify_and_flipped_bits_do_not(
    seed: bytes, message: bytes, bit: int
) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signature = key.sign(message)
    assert ed25519.verify(public, message, signature)
    flipped = bytearray(signature)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert not ed25519.verify(public, message, bytes(flipped))
    if message:
        altered = bytearray(message)
        altered[bit % len(altered)] ^= 1 << (bit % 8)
        assert not ed25519.verify(public, bytes(altered), signature)
    other = bytearray(public)
    other[bit % 32] ^= 1 << (bit % 8)
    assert not ed25519.verify(bytes(other), message, signature)
