"""nginx in front of the example app, as a browser and an operator see it.

Requests go to nginx inside the container (curl) and from the controller to
the container's address on the Docker bridge. The tests run in file order
(every one takes the `host` fixture); the last ones change the site.
"""

import json
import re
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest

CA = "/etc/ssl/wsgi-stack/ca/ca.pem"
SITE = "/etc/nginx/sites-available/hello.conf"


def curl(host, url, *args, name="hello.test"):
    """curl inside the container; name resolves to nginx on 127.0.0.1."""
    port = 443 if url.startswith("https") else 80
    return host.run(f"curl -sS --max-time 20 --cacert {CA} --resolve {name}:{port}:127.0.0.1 {' '.join(args)} '{url}'")


def headers(host, url, *args, name="hello.test"):
    out = curl(host, url, "-o /dev/null -D -", *args, name=name)
    assert out.rc == 0, out.stderr
    lines = out.stdout.splitlines()
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
    return status, fields


def live(host):
    return Path(host.file("/srv/hello/current").linked_to).name


@pytest.fixture(scope="module")
def address(host):
    """The container's address on the Docker bridge, as the controller reaches it."""
    name = host.backend.host
    return subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name],
        check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def ca_file(host, tmp_path_factory):
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_text(host.file(CA).content_string)
    return str(path)


# --- as converge left it ------------------------------------------------------

def test_http_redirects_to_https(host):
    status, fields = headers(host, "http://hello.test/some/page?x=1")
    assert status == 301
    assert fields["location"] == "https://hello.test/some/page?x=1"


def test_https_is_answered_by_the_app_with_the_live_release(host):
    out = curl(host, "https://hello.test/health")
    assert out.rc == 0, out.stderr
    assert json.loads(out.stdout) == {"status": "ok", "release": live(host)}


def test_app_sees_https_the_client_address_and_a_request_id(host):
    seen = json.loads(curl(host, "https://www.hello.test/whoami", name="www.hello.test").stdout)
    assert seen["scheme"] == "https"
    assert seen["client"] == "127.0.0.1"
    assert seen["host"] == "www.hello.test"
    assert re.fullmatch(r"[0-9a-f]{32}", seen["request_id"])


def test_controller_reaches_the_site_over_http2_with_the_hosts_ca(host, address, ca_file):
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "--http2", "--cacert", ca_file, "--resolve", f"hello.test:443:{address}",
         "-w", "\n%{http_version}", "https://hello.test/whoami"],
        capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    body, version = out.stdout.rsplit("\n", 1)
    assert version == "2"
    seen = json.loads(body)
    # The controller's address on the bridge, not nginx's own.
    assert seen["client"] not in ("127.0.0.1", address, "")


def test_tls_scan_is_compliant_with_mozilla_intermediate(host, address, ca_file, measured):
    # sslyze from the controller, trusting the host's CA; it exits 1 when the
    # server does not comply with the profile.
    out = subprocess.run(["sslyze", "--mozilla_config=intermediate", "--certinfo_ca_file", ca_file,
                          f"hello.test:443{{{address}}}"], capture_output=True, text=True, timeout=300, check=False)
    verdict = out.stdout[out.stdout.index("COMPLIANCE AGAINST"):].strip().splitlines()[-1].strip()
    measured("sslyze --mozilla_config=intermediate", verdict)
    assert out.returncode == 0, out.stdout[-2000:]
    assert "VULNERABLE" not in out.stdout.upper().replace("NOT VULNERABLE", "")
    for check in ("Heartbleed", "CCS injection", "ROBOT", "Renegotiation", "Compression"):
        assert check.lower() in out.stdout.lower()


def test_security_headers_without_hsts_for_a_selfsigned_certificate(host):
    status, fields = headers(host, "https://hello.test/")
    assert status == 200
    assert fields["x-content-type-options"] == "nosniff"
    assert fields["x-frame-options"] == "DENY"
    assert fields["content-security-policy"] == "frame-ancestors 'none'"
    assert fields["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in fields
    assert "server" not in fields or fields["server"] == "nginx"  # no version


def test_unknown_names_get_no_answer(host):
    # HTTP: 444 closes the connection without a response.
    assert curl(host, "http://evil.test/", name="evil.test").rc == 52
    assert host.run("curl -sS --max-time 10 http://127.0.0.1/").rc == 52
    # HTTPS: the handshake is refused, so no certificate is shown.
    out = curl(host, "https://evil.test/", "-k", name="evil.test")
    assert out.rc == 35, out.stderr


def test_static_files_come_from_nginx_with_cache_headers_and_gzip(host):
    status, fields = headers(host, "https://hello.test/static/style.css", "-H 'Accept-Encoding: gzip'")
    assert status == 200
    assert fields["cache-control"] == "max-age=604800"
    assert "expires" in fields
    assert fields["content-encoding"] == "gzip"
    # Security headers survive the location's own add_header.
    assert fields["x-content-type-options"] == "nosniff"


def test_app_down_shows_the_friendly_page_while_static_files_still_serve(host):
    host.check_output("systemctl stop hello.socket hello.service")
    try:
        status, fields = headers(host, "https://hello.test/")
        assert status == 502
        assert "Back soon" in curl(host, "https://hello.test/").stdout
        assert fields["x-content-type-options"] == "nosniff"
        assert headers(host, "https://hello.test/static/style.css")[0] == 200
    finally:
        host.check_output("systemctl start hello.socket hello.service")
    assert headers(host, "https://hello.test/health")[0] == 200


def test_nginx_sandbox_lowers_its_exposure(host, measured):
    out = host.check_output("systemd-analyze security --no-pager nginx.service")
    score = float(re.search(r"Overall exposure level for nginx.service: (\d+\.\d+)", out).group(1))
    measured("systemd-analyze security nginx.service (Debian's unit: 9.6)", score)
    assert score < 5.0


def test_check_mode_on_the_converged_host_changes_nothing(host, ansible_playbook):
    run = ansible_playbook("converge.yml", "--check", "--diff")
    assert run.rc == 0, run.output
    assert run.changed() == 0, run.output


# --- changes --------------------------------------------------------------------

def test_broken_extra_config_fails_and_the_old_config_keeps_serving(host, ansible_playbook):
    before = host.file(SITE).content_string
    run = ansible_playbook("site.yml", extra_vars={"nginx_extra_config": "bogus_directive on;"})
    assert run.rc != 0
    assert 'unknown directive "bogus_directive"' in run.output
    assert host.file(SITE).content_string == before
    assert host.run("nginx -t").rc == 0
    assert headers(host, "https://hello.test/health")[0] == 200


@pytest.mark.parametrize("extra, message", [
    ({"app_domains": ["hello.test", "bad_name!"]}, "app_domains must list"),
    ({"tls_mode": "magic"}, "tls_mode"),
    ({"nginx_hsts_max_age": "forever"}, "nginx_hsts_max_age"),
])
def test_bad_input_fails_before_changing_the_host(host, ansible_playbook, extra, message):
    run = ansible_playbook("site.yml", extra_vars=extra)
    assert run.rc != 0
    assert message in run.output
    assert run.changed() == 0


def test_maintenance_switch_answers_503_and_reloads_without_restart(host, ansible_playbook):
    master = host.check_output("systemctl show -P MainPID nginx.service")
    run = ansible_playbook("site.yml", extra_vars={"nginx_maintenance": True})
    assert run.rc == 0, run.output
    try:
        status, _ = headers(host, "https://hello.test/health")
        assert status == 503
    finally:
        assert ansible_playbook("site.yml").rc == 0
    assert headers(host, "https://hello.test/health")[0] == 200
    assert host.check_output("systemctl show -P MainPID nginx.service") == master


# --- a provided certificate (last: the site keeps it) -----------------------------

def make_certificate(directory, name):
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=hello.test",
                    "-addext", "subjectAltName=DNS:hello.test,DNS:www.hello.test"],
                   check=True, capture_output=True)
    return key.read_text(), cert.read_text()


def served_fingerprint(host):
    return host.check_output(
        "openssl s_client -connect 127.0.0.1:443 -servername hello.test </dev/null 2>/dev/null"
        " | openssl x509 -noout -fingerprint -sha256")


def test_provided_key_that_does_not_match_fails_before_any_change(host, ansible_playbook, tmp_path):
    _, cert = make_certificate(tmp_path, "one")
    other_key, _ = make_certificate(tmp_path, "two")
    run = ansible_playbook("site.yml", extra_vars={
        "tls_mode": "provided", "tls_certificate": cert, "tls_private_key": other_key})
    assert run.rc != 0
    assert "tls_private_key does not match tls_certificate" in run.output
    assert run.changed() == 0
    assert "PRIVATE KEY" not in run.output


def test_provided_certificate_is_served_with_hsts(host, ansible_playbook, tmp_path):
    key, cert = make_certificate(tmp_path, "provided")
    run = ansible_playbook("site.yml", "--diff", extra_vars={
        "tls_mode": "provided", "tls_certificate": cert, "tls_private_key": key})
    assert run.rc == 0, run.output
    assert "PRIVATE KEY" not in run.output
    expected = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=cert,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert served_fingerprint(host) == expected
    key_file = host.file("/etc/ssl/wsgi-stack/hello/privkey.pem")
    assert (key_file.user, key_file.group, key_file.mode) == ("root", "root", 0o600)
    status, fields = headers(host, "https://hello.test/health", "-k")
    assert status == 200
    assert fields["strict-transport-security"] == "max-age=31536000"
