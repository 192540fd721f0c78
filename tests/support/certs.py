"""Throwaway certificate authorities and certificates for TLS tests, made with `cryptography`.

`make_pki(directory)` writes two independent CAs as PEM files: the trusted one with a server
certificate (for `localhost` and 127.0.0.1) and a client certificate, and a stranger CA with
its own server and client certificates, to prove that a certificate from the wrong CA is
refused in either direction. Keys are P-256: quick to make on a slow machine.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Identity:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class Pki:
    """The files of `make_pki`.

    Attributes:
        ca: The trusted CA certificate.
        server: A server certificate signed by `ca`, for localhost and 127.0.0.1.
        client: A client certificate signed by `ca`.
        stranger_ca: Another CA, trusted by nobody.
        stranger_server: A server certificate signed by `stranger_ca`.
        stranger_client: A client certificate signed by `stranger_ca`.
    """

    ca: Path
    server: Identity
    client: Identity
    stranger_ca: Path
    stranger_server: Identity
    stranger_client: Identity


def make_pki(directory: Path) -> Pki:
    """Writes the CAs, certificates and keys into directory (which must exist)."""
    ca_key, ca_cert = _authority("dialogue test CA")
    stranger_key, stranger_cert = _authority("stranger CA")
    return Pki(
        ca=_write_cert(directory / "ca.pem", ca_cert),
        server=_issue(directory, "server", ca_key, ca_cert, server=True),
        client=_issue(directory, "client", ca_key, ca_cert, server=False),
        stranger_ca=_write_cert(directory / "stranger-ca.pem", stranger_cert),
        stranger_server=_issue(
            directory, "stranger-server", stranger_key, stranger_cert, server=True
        ),
        stranger_client=_issue(
            directory, "stranger-client", stranger_key, stranger_cert, server=False
        ),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _authority(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _VALIDITY)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _issue(
    directory: Path,
    name: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    *,
    server: bool,
) -> Identity:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost" if server else f"dialogue-{name}"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _VALIDITY)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    certificate = builder.sign(ca_key, hashes.SHA256())
    key_path = directory / f"{name}-key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Identity(_write_cert(directory / f"{name}.pem", certificate), key_path)


def _write_cert(path: Path, certificate: x509.Certificate) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path
