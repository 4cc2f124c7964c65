"""The local stack's private certificate authority, and the certificates it signs (PEM, made with `cryptography`).

Both servers speak TLS only: Kafka's client and controller listeners, and PostgreSQL. Clients trust the CA
alone, so a server certificate from anywhere else is refused. Keys are written with mode 0600 and never
leave the state folder.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=825)
RENEW_BEFORE = dt.timedelta(days=30)  # a certificate this close to its end is issued afresh


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


def _write(path: Path, data: bytes, secret: bool) -> None:
    """Atomically (a reader sees the old file or the new one), with the mode set whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    mode = 0o600 if secret else 0o644
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), mode)
        out.write(data)
    tmp.replace(path)


def _keep_private(path: Path) -> None:
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "credit-sanction hub (local)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class LocalCA:
    """A CA in `folder` (ca.pem, ca-key.pem), made on first use and kept."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.cert_path = folder / "ca.pem"
        self.key_path = folder / "ca-key.pem"

    def ensure(self) -> LocalCA:
        if self.cert_path.exists() and self.key_path.exists():
            _keep_private(self.key_path)
            return self
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        name = _name("hub local CA")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + 10 * VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write(self.key_path, _key_pem(key), secret=True)
        _write(self.cert_path, cert.public_bytes(serialization.Encoding.PEM), secret=False)
        return self

    def issue(self, name: str, common_name: str, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Issued:
        """A server (and client) certificate for `hosts`, signed by this CA; made once, kept."""
        issued = Issued(self.folder / f"{name}.pem", self.folder / f"{name}-key.pem")
        self.ensure()
        ca_cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        names = _general_names(hosts)
        if _still_good(issued, ca_cert, common_name, names):
            _keep_private(issued.key)
            return issued
        ca_key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(_LEAF_KEY_USAGE, critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        _write(issued.key, _key_pem(key), secret=True)
        _write(issued.cert, cert.public_bytes(serialization.Encoding.PEM), secret=False)
        return issued

    def keystore(self, issued: Issued, path: Path) -> Path:
        """One PEM file of the key (PKCS#8, unencrypted), the certificate and this CA's certificate, mode 0600:
        what Kafka reads with `ssl.keystore.type=PEM` and no key password. Java 17 cannot read the PBES2
        encryption of an encrypted PKCS#8 key, nor a "traditional" OpenSSL key, hence this form.
        Rewritten only when its content would change."""
        data = b"".join(
            part if part.endswith(b"\n") else part + b"\n"
            for part in (issued.key.read_bytes(), issued.cert.read_bytes(), self.cert_path.read_bytes())
        )
        if not path.exists() or path.read_bytes() != data:
            _write(path, data, secret=True)
        _keep_private(path)
        return path


# digitalSignature is what an EC key does in a TLS 1.2/1.3 handshake (ECDHE key exchange, ECDSA signature).
_LEAF_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _general_names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _still_good(issued: Issued, ca_cert: x509.Certificate, common_name: str, names: list[x509.GeneralName]) -> bool:
    """An existing certificate is kept when this CA signed it, it matches its key and what is asked for, carries
    today's extensions and is not near its end; otherwise (older CA, older format, new hosts) it is issued again."""
    if not (issued.cert.exists() and issued.key.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(issued.cert.read_bytes())
        key = serialization.load_pem_private_key(issued.key.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False
    cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return (
        key.public_key() == cert.public_key()
        and cn == [common_name]
        and set(sans) == set(names)
        and usage.digital_signature
        and {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(eku)
        and cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE
    )
