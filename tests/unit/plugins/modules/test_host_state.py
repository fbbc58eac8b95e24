"""host_state: what a deploy compares against, read without following links."""

import hashlib
import os
import pwd

import pytest

from ansible_collections.wsgi.stack.plugins.modules.host_state import certificate, checksum, describe, group, user


def test_a_missing_path_and_a_path_below_a_file_do_not_exist(tmp_path):
    (tmp_path / "file").write_text("x")
    assert describe(str(tmp_path / "missing")) == {"exists": False}
    assert describe(str(tmp_path / "file" / "below")) == {"exists": False}


def test_a_directory_is_described_with_names_and_an_octal_mode(tmp_path):
    d = tmp_path / "d"
    d.mkdir(mode=0o750)
    os.chmod(d, 0o750)
    out = describe(str(d))
    me = pwd.getpwuid(os.getuid()).pw_name
    assert (out["exists"], out["type"], out["owner"], out["mode"]) == (True, "directory", me, "0750")


def test_a_link_is_reported_as_a_link_and_not_followed(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    out = describe(str(tmp_path / "link"))
    assert out["type"] == "link" and out["target"] == str(target)
    # A dangling link exists too.
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert describe(str(tmp_path / "dangling"))["exists"]


def test_checksum_is_sha1_and_refuses_a_link(tmp_path):
    f = tmp_path / "env"
    f.write_bytes(b"SECRET_KEY=x\n")
    assert checksum(str(f)) == hashlib.sha1(b"SECRET_KEY=x\n").hexdigest()
    (tmp_path / "link").symlink_to(f)
    with pytest.raises(OSError):
        checksum(str(tmp_path / "link"))


def test_unknown_accounts_and_groups_are_none():
    assert user("wsgi-stack-no-such-user") is None
    assert group("wsgi-stack-no-such-group") is None
    assert user("root")["home"] == "/root" and group("root") == {"gid": 0}


def _pem_certificate(names, days):
    """A self-signed certificate for names, valid for days, as PEM bytes."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), now.timestamp() + days * 86400


def test_a_certificate_is_read_with_its_expiry_names_and_issuer(tmp_path):
    pem, expiry = _pem_certificate(["www.hello.test", "hello.test"], 90)
    chain = tmp_path / "fullchain.pem"
    # A chain: the first certificate is the one described.
    chain.write_bytes(pem + _pem_certificate(["other.test"], 10)[0])
    out = certificate(str(chain))
    assert out["subject"] == "www.hello.test" and out["issuer"] == "test CA"
    assert out["names"] == ["hello.test", "www.hello.test"]
    assert abs(out["not_after"] - expiry) < 5


def test_a_file_without_a_certificate_is_none_and_a_link_is_refused(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    assert certificate(str(junk)) is None
    (tmp_path / "link.pem").symlink_to(junk)
    with pytest.raises(OSError):
        certificate(str(tmp_path / "link.pem"))
