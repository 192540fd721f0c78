"""Reading and checking PEM credential files at start-up, for the server and the gateways.

A missing, unreadable or mismatched file stops the process with a message that names the flag
and the path (never what the file holds), instead of failing the first handshake.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = ["ConfigurationError", "check_certificates", "check_pair", "read_pem"]


class ConfigurationError(ValueError):
    """A security setting that cannot work: the process refuses to start (exit 2)."""


def read_pem(path: Path, what: str) -> bytes:
    """The bytes of a PEM file.

    Raises:
        ConfigurationError: it cannot be read or holds no PEM block.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise ConfigurationError(f"{what} {path}: not a PEM file")
    return data


def check_certificates(pem: bytes, what: str) -> list[x509.Certificate]:
    """The certificates of a PEM bundle.

    Raises:
        ConfigurationError: it holds none, or one does not parse.
    """
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ConfigurationError(f"{what}: not PEM certificates ({exc})") from None


def check_pair(cert_pem: bytes, key_pem: bytes, cert_what: str, key_what: str) -> None:
    """Checks that the certificate chain parses and its first certificate belongs to the key.

    Raises:
        ConfigurationError: either does not parse, or they do not belong together.
    """
    certificate = check_certificates(cert_pem, cert_what)[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        # Says what is wrong with the file, never what is in it.
        raise ConfigurationError(
            f"{key_what}: not an unencrypted PEM private key ({type(exc).__name__})"
        ) from None
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if certificate.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise ConfigurationError(f"{key_what} is not the key of the certificate in {cert_what}")
