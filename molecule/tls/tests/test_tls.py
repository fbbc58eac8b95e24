"""The tls role alone: what a certificate's user (nginx, a browser trusting
the host's CA) relies on, and what each mode and setting changes."""

import subprocess

import pytest

CA_DIR = "/etc/ssl/wsgi-stack/ca"
DIR = "/etc/ssl/wsgi-stack/{}"


def x509(host, path, *fields):
    return host.check_output(f"openssl x509 -noout {' '.join(fields)} -in {path}")


def fingerprint(host, path):
    return x509(host, path, "-fingerprint", "-sha256")


def names(host, app):
    return x509(host, f"{DIR.format(app)}/fullchain.pem", "-ext", "subjectAltName").splitlines()[-1].strip()


def converge(ansible_playbook, *args, **extra_vars):
    return ansible_playbook("converge.yml", *args, extra_vars=extra_vars or None)


# --- as converge left it ------------------------------------------------------

def test_the_certificate_names_the_domains_and_is_signed_by_the_hosts_ca(host):
    cert = f"{DIR.format('hello')}/fullchain.pem"
    assert names(host, "hello") == "DNS:hello.test, DNS:www.hello.test"
    assert x509(host, cert, "-subject", "-nameopt", "RFC2253") == "subject=CN=hello.test"
    assert host.run(f"openssl verify -CAfile {CA_DIR}/ca.pem {cert}").rc == 0
    assert "prime256v1" in x509(host, cert, "-text")


def test_keys_are_roots_alone_and_certificates_readable(host):
    expected = {DIR.format("hello"): 0o700, f"{DIR.format('hello')}/privkey.pem": 0o600,
                f"{DIR.format('hello')}/fullchain.pem": 0o644, f"{CA_DIR}/ca.key": 0o600, f"{CA_DIR}/ca.pem": 0o644}
    for path, mode in expected.items():
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "root", mode), path
    assert host.run(f"openssl pkey -noout -in {DIR.format('hello')}/privkey.pem -check").rc == 0


def test_the_hosts_ca_may_only_vouch_for_test_names(host):
    text = x509(host, f"{CA_DIR}/ca.pem", "-text")
    assert "CA:TRUE, pathlen:0" in text
    permitted = text.split("Permitted:", 1)[1]
    assert "DNS:test" in permitted and "DNS:localhost" in permitted
    assert "DNS:com" not in permitted


def test_a_second_application_gets_its_own_certificate_from_the_same_ca(host, ansible_playbook):
    ca = fingerprint(host, f"{CA_DIR}/ca.pem")
    run = converge(ansible_playbook, app_name="hi", app_domains=["hi.test"])
    assert run.rc == 0, run.output
    assert fingerprint(host, f"{CA_DIR}/ca.pem") == ca
    assert names(host, "hi") == "DNS:hi.test"
    assert host.run(f"openssl verify -CAfile {CA_DIR}/ca.pem {DIR.format('hi')}/fullchain.pem").rc == 0
    again = converge(ansible_playbook, app_name="hi", app_domains=["hi.test"])
    assert again.rc == 0 and again.changed() == 0, again.output


def test_new_domains_get_a_new_certificate_with_the_same_key(host, ansible_playbook):
    key = host.file(f"{DIR.format('hi')}/privkey.pem").content_string
    run = converge(ansible_playbook, app_name="hi", app_domains=["hi.test", "api.hi.test"])
    assert run.rc == 0, run.output
    assert names(host, "hi") == "DNS:hi.test, DNS:api.hi.test"
    assert host.file(f"{DIR.format('hi')}/privkey.pem").content_string == key


def test_a_certificate_expiring_within_tls_renew_days_is_renewed_once(host, ansible_playbook):
    cert = f"{DIR.format('hello')}/fullchain.pem"
    before = fingerprint(host, cert)
    # The certificate made at converge has 90 days left: within 95.
    longer = {"tls_selfsigned_days": 100, "tls_renew_days": 95}
    run = converge(ansible_playbook, **longer)
    assert run.rc == 0, run.output
    renewed = fingerprint(host, cert)
    assert renewed != before
    assert host.run(f"openssl verify -CAfile {CA_DIR}/ca.pem {cert}").rc == 0
    # The renewed one has 100 days left, and is current for both windows.
    for settings in (longer, {}):
        again = converge(ansible_playbook, **settings)
        assert again.rc == 0 and again.changed() == 0, again.output
    assert fingerprint(host, cert) == renewed


def test_check_mode_on_the_converged_host_changes_nothing_and_shows_no_key(host, ansible_playbook):
    run = converge(ansible_playbook, "--check", "--diff")
    assert run.rc == 0, run.output
    assert run.changed() == 0, run.output
    assert "PRIVATE KEY" not in run.output


# --- a provided certificate ---------------------------------------------------

def make_certificate(directory, name, *domains):
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "30", "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={domains[0]}",
                    "-addext", "subjectAltName=" + ",".join(f"DNS:{d}" for d in domains)],
                   check=True, capture_output=True)
    return key.read_text(), cert.read_text()


def test_a_provided_certificate_replaces_the_selfsigned_one_and_its_key_is_never_shown(
        host, ansible_playbook, tmp_path):
    key, cert = make_certificate(tmp_path, "shop", "shop.test")
    run = converge(ansible_playbook, "--diff", app_name="shop", app_domains=["shop.test"],
                   tls_mode="provided", tls_certificate=cert, tls_private_key=key)
    assert run.rc == 0, run.output
    assert "PRIVATE KEY" not in run.output
    assert host.file(f"{DIR.format('shop')}/fullchain.pem").content_string.strip() == cert.strip()
    assert host.file(f"{DIR.format('shop')}/privkey.pem").mode == 0o600
    again = converge(ansible_playbook, app_name="shop", app_domains=["shop.test"],
                     tls_mode="provided", tls_certificate=cert, tls_private_key=key)
    assert again.rc == 0 and again.changed() == 0, again.output


@pytest.mark.one_distro
def test_a_provided_key_of_another_certificate_fails_before_any_change(host, ansible_playbook, tmp_path):
    _unused, cert = make_certificate(tmp_path, "one", "shop.test")
    other_key, _unused = make_certificate(tmp_path, "two", "shop.test")
    before = fingerprint(host, f"{DIR.format('shop')}/fullchain.pem")
    run = converge(ansible_playbook, app_name="shop", app_domains=["shop.test"],
                   tls_mode="provided", tls_certificate=cert, tls_private_key=other_key)
    assert run.rc != 0
    assert "tls_private_key does not match tls_certificate" in run.output
    assert run.changed() == 0
    assert "PRIVATE KEY" not in run.output
    assert fingerprint(host, f"{DIR.format('shop')}/fullchain.pem") == before
