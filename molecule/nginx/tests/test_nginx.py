"""nginx in front of the example app, as a browser and an operator see it.

Requests go to nginx inside the container (curl) and from the controller to
the container's address on the Docker bridge. The tests run in file order
(every one takes the `host` fixture); the last ones change the site.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import assert_refused, exposure, wait_for

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


CA_DIR = "/etc/ssl/wsgi-stack/ca"
FORGE = f"""\
set -e
cd "$(mktemp -d)"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.pem -subj /CN={{name}} \\
  -addext subjectAltName=DNS:{{name}} -out r.pem 2>/dev/null
openssl x509 -req -in r.pem -CA {CA_DIR}/ca.pem -CAkey {CA_DIR}/ca.key -days 1 -copy_extensions copy -out c.pem 2>/dev/null
openssl verify -CAfile {CA_DIR}/ca.pem c.pem 2>&1
"""


def test_the_hosts_ca_cannot_vouch_for_a_public_name(host):
    """Trusting the demo CA in a browser is safe: even with its key, a
    certificate for a public name does not verify."""
    assert "permitted subtree violation" in host.run(FORGE.format(name="www.bank.example.co")).stdout
    assert host.run(FORGE.format(name="other.test")).stdout.endswith("c.pem: OK\n")
    days = host.check_output(f"echo $(( ($(date -d \"$(openssl x509 -in {CA_DIR}/ca.pem -noout -enddate | cut -d= -f2)\" +%s)"
                             " - $(date +%s)) / 86400 ))")
    assert 800 <= int(days) <= 825


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


def test_a_known_name_with_an_unknown_host_header_is_misdirected(host):
    # The handshake names hello.test; the request asks for another site.
    status, _unused = headers(host, "https://hello.test/", "-H 'Host: evil.test'")
    assert status == 421


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
    score = exposure(host, "nginx.service")
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


# Each: (the extra variables, what the error must say).
BAD_INPUT = {
    "bad-domain": ({"app_domains": ["hello.test", "bad_name!"]}, "app_domains must list"),
    "tls-mode": ({"tls_mode": "magic"}, "tls_mode"),
    "hsts-age": ({"nginx_hsts_max_age": "forever"}, "nginx_hsts_max_age"),
    "hsts-preload": ({"nginx_hsts_preload": True},
                     "nginx_hsts_preload needs nginx_hsts and nginx_hsts_include_subdomains"),
    "acme-email": ({"tls_mode": "acme"}, "tls_acme_email must be the ACME account's email address"),
    "acme-http": ({"tls_mode": "acme", "tls_acme_email": "ops@hello.test", "tls_acme_directory": "http://ca.test/dir"},
                  "tls_acme_directory must be the ACME CA's https:// directory URL"),
    "static-path": ({"nginx_static_path": "../../../../etc"},
                    "nginx_static_path must be a relative path inside the release"),
    "static-url": ({"nginx_static_url": "/static/../"}, "nginx_static_url must be a path"),
    "header-injection": ({"nginx_security_headers": {"X-Frame-Options": 'DENY" always; root /etc; add_header X "y'}},
                         "nginx_security_headers must map header names"),
    "header-name": ({"nginx_security_headers": {"X Bad": "1"}}, "nginx_security_headers must map header names"),
    "reserved-name": ({"app_name": "wsgi-stack-default"}, "app_name 'wsgi-stack-default' is reserved by wsgi.stack"),
    "domain-newline": ({"app_domains": ["hello.test\n"]}, "app_domains must list"),
    "body-size": ({"nginx_client_max_body_size": "10 MB"}, "nginx_client_max_body_size ('10 MB') must be a size"),
    "expires": ({"nginx_static_expires": "soon"}, "nginx_static_expires ('soon') a time"),
    "renew-days": ({"tls_renew_days": 400}, "tls_renew_days (400) must be less than tls_selfsigned_days"),
    "outside-ca": ({"app_domains": ["hello.test", "shop.example.co"]},
                   "app_domains shop.example.co fall outside tls_selfsigned_ca_domains"),
}


@pytest.fixture(scope="module")
def bad_input_runs(host, ansible_cases):
    """Every case of BAD_INPUT in one run of site.yml, and whether the site
    and the app's answer through nginx were the same afterwards."""
    site = host.file(SITE).content_string
    runs = ansible_cases("site.yml", {case: extra for case, (extra, _unused) in BAD_INPUT.items()})
    return runs, host.file(SITE).content_string == site, headers(host, "https://hello.test/health")[0]


@pytest.mark.one_distro
@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_fails_before_changing_the_host(host, bad_input_runs, case):
    runs, site_unchanged, status = bad_input_runs
    assert_refused(runs[case], BAD_INPUT[case][1])
    assert site_unchanged and status == 200


def test_maintenance_switch_answers_503_and_reloads_without_restart(host, ansible_playbook):
    master = host.check_output("systemctl show -P MainPID nginx.service")
    run = ansible_playbook("site.yml", extra_vars={"nginx_maintenance": True})
    assert run.rc == 0, run.output
    try:
        status, _unused = headers(host, "https://hello.test/health")
        assert status == 503
    finally:
        assert ansible_playbook("site.yml").rc == 0
    assert headers(host, "https://hello.test/health")[0] == 200
    assert host.check_output("systemctl show -P MainPID nginx.service") == master


def test_body_size_and_rate_limits_answer_413_and_429(host, ansible_playbook):
    """The next test's run puts the limits back to their defaults."""
    run = ansible_playbook("site.yml", extra_vars={
        "nginx_client_max_body_size": "1k", "nginx_rate_limit": 2, "nginx_rate_limit_burst": 5})
    assert run.rc == 0, run.output
    code = "-o /dev/null -w '%{http_code}\\n'"
    # /health takes no POST: a 405 is the app's answer, a 413 is nginx's.
    small = curl(host, "https://hello.test/health", code, "--data-binary small")
    big = curl(host, "https://hello.test/health", code, "--data-binary @/etc/ssl/certs/ca-certificates.crt")
    assert (small.stdout.strip(), big.stdout.strip()) == ("405", "413")
    # Twelve requests at once on one connection: the burst of 5 passes, the rest wait their turn.
    urls = " ".join(["https://hello.test/health"] * 11)
    codes = curl(host, "https://hello.test/health", code, urls).stdout.split()
    assert codes.count("429") >= 4, codes
    assert codes[0] == "200"


# --- an ACME certificate from Pebble, the ACME test server prepare.yml starts -----

PEBBLE = {"tls_mode": "acme", "tls_acme_directory": "https://localhost:14000/dir", "tls_acme_email": "ops@hello.test"}
PEBBLE_ROOT = "/root/pebble-root.pem"


def served_certificate(host, *fields):
    return host.check_output(
        "openssl s_client -connect 127.0.0.1:443 -servername hello.test </dev/null 2>/dev/null"
        f" | openssl x509 -noout {' '.join(fields)}")


def test_acme_certificate_is_issued_by_pebble_and_served_with_hsts(host, ansible_playbook):
    run = ansible_playbook("site.yml", extra_vars=PEBBLE)
    assert run.rc == 0, run.output
    assert "Pebble" in served_certificate(host, "-issuer")
    # Pebble makes a new root each time it starts; it hands it out to tests.
    host.check_output(f"curl -sS -o {PEBBLE_ROOT} https://localhost:15000/roots/0")
    out = host.run(f"curl -sS --cacert {PEBBLE_ROOT} --resolve www.hello.test:443:127.0.0.1"
                   " -D - -o /dev/null https://www.hello.test/health")
    assert out.rc == 0, out.stderr
    assert "strict-transport-security: max-age=31536000\r" in out.stdout.lower()
    assert host.service("certbot.timer").is_enabled
    assert host.service("certbot.timer").is_running


def test_acme_mode_is_idempotent_and_check_mode_changes_nothing(host, ansible_playbook):
    again = ansible_playbook("site.yml", extra_vars=PEBBLE)
    assert again.rc == 0, again.output
    assert again.changed() == 0, again.output
    check = ansible_playbook("site.yml", "--check", "--diff", extra_vars=PEBBLE)
    assert check.rc == 0, check.output
    assert check.changed() == 0, check.output


def test_acme_certificate_is_renewed_by_the_timer_and_nginx_reloads(host, ansible_playbook):
    # Pebble's certificates last five years: with ten years' notice, every one is due.
    run = ansible_playbook("site.yml", extra_vars={**PEBBLE, "tls_renew_days": 3650})
    assert run.rc == 0, run.output
    before = served_certificate(host, "-serial")
    master = host.check_output("systemctl show -P MainPID nginx.service")
    # What certbot.timer starts (a oneshot: it returns when certbot is done).
    host.check_output("systemctl start certbot.service")
    renewed = host.check_output("openssl x509 -noout -serial -in /etc/letsencrypt/live/hello/cert.pem")
    assert renewed != before
    wait_for(lambda: served_certificate(host, "-serial") == renewed, 30, "nginx serving the renewed certificate")
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
    _unused, cert = make_certificate(tmp_path, "one")
    other_key, _unused = make_certificate(tmp_path, "two")
    run = ansible_playbook("site.yml", extra_vars={
        "tls_mode": "provided", "tls_certificate": cert, "tls_private_key": other_key})
    assert run.rc != 0
    assert "tls_private_key does not match tls_certificate" in run.output
    assert run.changed() == 0
    assert "PRIVATE KEY" not in run.output


OCSP_DIR = "/root/ocsp"


def ca_signed_certificate_with_ocsp(host):
    """A CA, a certificate naming an OCSP responder, and that responder (openssl ocsp on port 8888)."""
    d = OCSP_DIR
    host.check_output(
        f"mkdir -p {d} && cd {d}"
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -keyout ca.key"
        " -out ca.pem -subj '/CN=wsgi.stack test OCSP CA' -addext basicConstraints=critical,CA:TRUE"
        " -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature 2>/dev/null"
        " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr"
        " -subj /CN=hello.test 2>/dev/null"
        " && printf 'subjectAltName=DNS:hello.test,DNS:www.hello.test\\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:8888\\n'"
        " > leaf.ext"
        " && openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile leaf.ext"
        " -out leaf.pem 2>/dev/null"
        " && serial=$(openssl x509 -noout -serial -in leaf.pem | cut -d= -f2)"
        " && end=$(date -u -d \"$(openssl x509 -noout -enddate -in leaf.pem | cut -d= -f2)\" +%y%m%d%H%M%SZ)"
        " && printf 'V\\t%s\\t\\t%s\\tunknown\\t/CN=hello.test\\n' $end $serial > index.txt")
    host.check_output(f"cd {d} && setsid openssl ocsp -index index.txt -port 8888 -rsigner ca.pem -rkey ca.key"
                      " -CA ca.pem -nmin 60 </dev/null >ocsp.log 2>&1 &")
    chain = host.file(f"{d}/leaf.pem").content_string + host.file(f"{d}/ca.pem").content_string
    return host.file(f"{d}/leaf.key").content_string, chain


def stapled(host):
    return host.run("openssl s_client -connect 127.0.0.1:443 -servername hello.test -status </dev/null 2>/dev/null").stdout


def test_provided_certificate_is_served_with_ocsp_stapling_and_hsts_options(host, ansible_playbook):
    key, chain = ca_signed_certificate_with_ocsp(host)
    run = ansible_playbook("site.yml", "--diff", extra_vars={
        "tls_mode": "provided", "tls_certificate": chain, "tls_private_key": key,
        "nginx_hsts_max_age": 63072000, "nginx_hsts_include_subdomains": True, "nginx_hsts_preload": True})
    assert run.rc == 0, run.output
    assert "PRIVATE KEY" not in run.output
    expected = host.check_output(f"openssl x509 -noout -fingerprint -sha256 -in {OCSP_DIR}/leaf.pem")
    assert served_fingerprint(host) == expected
    key_file = host.file("/etc/ssl/wsgi-stack/hello/privkey.pem")
    assert (key_file.user, key_file.group, key_file.mode) == ("root", "root", 0o600)
    assert not key_file.is_symlink
    out = host.run(f"curl -sS --cacert {OCSP_DIR}/ca.pem --resolve hello.test:443:127.0.0.1"
                   " -D - -o /dev/null https://hello.test/health")
    assert out.rc == 0, out.stderr
    assert "strict-transport-security: max-age=63072000; includesubdomains; preload\r" in out.stdout.lower()
    # nginx asks the responder after the first handshake and staples the answer to later ones.
    wait_for(lambda: "OCSP Response Status: successful" in stapled(host), 30, "a stapled OCSP response")
    assert "Cert Status: good" in stapled(host)


LONGEST_NAME = "longest-application-name-allowed"


def test_an_application_with_the_longest_allowed_name_is_served(host, ansible_playbook):
    """app_name may have 32 characters; nginx names its upstreams and
    variables after it, and a variable too long for nginx's hash fails
    `nginx -t`. Its site proxies to the example app's socket."""
    assert len(LONGEST_NAME) == 32
    run = ansible_playbook("site.yml", extra_vars={
        "app_name": LONGEST_NAME, "app_domains": ["long.test"], "nginx_upstream_socket": "/run/gunicorn/hello.sock"})
    assert run.rc == 0, run.output[-3000:]
    out = curl(host, "https://long.test/health", "-o /dev/null -w '%{http_code}'", name="long.test")
    assert out.stdout == "200", out.stderr
