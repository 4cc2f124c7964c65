"""The local stack's CA, the broker's certificate and keystore, and the Kafka passwords (no broker needed)."""

from __future__ import annotations

import ipaddress
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.devstack import secrets
from hub.devstack.state import StackError
from hub.devstack.tls import LocalCA


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_an_issued_certificate_is_signed_by_the_ca_for_localhost_as_server_and_client(tmp_path):
    ca = LocalCA(tmp_path).ensure()
    issued = ca.issue("kafka", "admin")
    ca_cert, cert = _cert(ca.cert_path), _cert(issued.cert)

    ca_cert.verify_directly_issued_by(ca_cert)  # self-signed
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(ca_cert)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["admin"]
    assert cert.subject.rfc4514_string().startswith("CN=admin,")  # what ssl.principal.mapping.rules expects
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"


def test_keys_are_private_unencrypted_pkcs8_and_match_their_certificates(tmp_path):
    ca = LocalCA(tmp_path).ensure()
    issued = ca.issue("kafka", "admin")
    for key_path, cert_path in ((ca.key_path, ca.cert_path), (issued.key, issued.cert)):
        assert _mode(key_path) == 0o600
        pem = key_path.read_bytes()
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, not "EC PRIVATE KEY", not "ENCRYPTED"
        key = serialization.load_pem_private_key(pem, password=None)
        assert key.public_key() == _cert(cert_path).public_key()
    assert _mode(ca.cert_path) == 0o644 and _mode(issued.cert) == 0o644


def test_the_keystore_is_key_then_certificate_then_ca(tmp_path):
    ca = LocalCA(tmp_path).ensure()
    issued = ca.issue("kafka", "admin")
    keystore = ca.keystore(issued, tmp_path / "kafka-keystore.pem")
    assert _mode(keystore) == 0o600
    data = keystore.read_bytes()
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----")
    serialization.load_pem_private_key(data, password=None)
    certs = x509.load_pem_x509_certificates(data)
    assert certs == [_cert(issued.cert), _cert(ca.cert_path)]


def test_files_are_kept_on_a_second_call(tmp_path):
    ca = LocalCA(tmp_path).ensure()
    issued = ca.issue("kafka", "admin")
    keystore = ca.keystore(issued, tmp_path / "kafka-keystore.pem")
    files = [ca.cert_path, ca.key_path, issued.cert, issued.key, keystore]
    before = {path: path.read_bytes() for path in files}

    again = LocalCA(tmp_path).ensure()
    issued_again = again.issue("kafka", "admin")
    again.keystore(issued_again, tmp_path / "kafka-keystore.pem")
    assert issued_again == issued
    assert {path: path.read_bytes() for path in files} == before


def test_a_certificate_of_another_ca_or_for_other_hosts_is_issued_again(tmp_path):
    ca = LocalCA(tmp_path).ensure()
    first = ca.issue("kafka", "admin").cert.read_bytes()
    ca.cert_path.unlink()  # a new CA: what it did not sign cannot stay
    new_ca = LocalCA(tmp_path).ensure()
    reissued = new_ca.issue("kafka", "admin")
    assert reissued.cert.read_bytes() != first
    _cert(reissued.cert).verify_directly_issued_by(_cert(new_ca.cert_path))
    wider = new_ca.issue("kafka", "admin", hosts=("127.0.0.1", "localhost", "::1"))
    sans = _cert(wider.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("::1") in sans.get_values_for_type(x509.IPAddress)


def test_the_secrets_folder_holds_the_ca_and_the_broker_keystore(tmp_path):
    keystore = secrets.broker_keystore(tmp_path)
    folder = secrets.secrets_dir(tmp_path)
    assert folder == tmp_path / "secrets" and _mode(folder) == 0o700
    assert keystore.parent == folder and _mode(keystore) == 0o600
    assert secrets.ca_file(tmp_path) == folder / "ca.pem"
    ca = _cert(secrets.ca_file(tmp_path))
    broker = x509.load_pem_x509_certificates(keystore.read_bytes())[0]
    broker.verify_directly_issued_by(ca)
    assert broker.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    before = keystore.read_bytes()
    assert secrets.broker_keystore(tmp_path).read_bytes() == before


def test_kafka_users_keep_their_passwords_and_newcomers_get_one(tmp_path):
    first = secrets.ensure_kafka_users(tmp_path, ["admin", "ledger"])
    assert set(first) == {"admin", "ledger"}
    assert len(set(first.values())) == 2
    path = secrets.secrets_dir(tmp_path) / "kafka-users.json"
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert json.loads(path.read_text()) == first

    second = secrets.ensure_kafka_users(tmp_path, ["admin", "ledger", "agency-bank"])
    assert {p: second[p] for p in first} == first
    assert set(second) == {"admin", "ledger", "agency-bank"}
    assert _mode(path) == 0o600
    for password in second.values():
        assert len(password) >= 32 and "," not in password and "=" not in password
    assert secrets.kafka_password(tmp_path, "agency-bank") == second["agency-bank"]
    assert secrets.ensure_kafka_users(tmp_path, ["ledger"]) == second  # the whole map, nothing dropped


def test_an_unknown_principal_has_no_password(tmp_path):
    with pytest.raises(StackError, match="agency-nobody"):
        secrets.kafka_password(tmp_path, "agency-nobody")  # no file yet
    secrets.ensure_kafka_users(tmp_path, ["admin"])
    with pytest.raises(StackError, match=r"agency-nobody.*kafka-users\.json"):
        secrets.kafka_password(tmp_path, "agency-nobody")


def test_a_principal_that_would_break_the_scram_syntax_is_refused(tmp_path):
    with pytest.raises(StackError):
        secrets.ensure_kafka_users(tmp_path, ["bad,name"])
