"""Zero downtime through the whole stack: 64 clients over HTTPS through nginx,
one request in three a POST that adds a row, while the hello application is
reloaded, restarted, recycled, reconfigured and redeployed. Every POST that
got a 2xx wrote exactly one row; no request of any method failed.

Runs last (file order: after test_reuse.py, whose check-mode deploy expects
hello as the inventory has it; the code-change deploy here leaves it changed),
on the hello application only.
"""

import shutil
import time
import uuid
from pathlib import Path

from conftest import HELLO_MIXED as MIXED
from conftest import load_while_recycling, visits, wait_for

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "hello"
CLIENTS = 64
# Each client at most one request a second: 64 new TLS connections a second
# keep requests waiting through every restart and switch, and leave the
# CPUs to what the test changes under them (unpaced, the load takes both).
PACE = 1.0
# Under a whole deploy, one request every four seconds each: 16 a second
# still reach every moment of it, and the load does not slow the deploy it
# measures (at one a second each, it takes most of the CPUs from it).
DEPLOY_PACE = 4.0


def main_pid(host):
    return int(host.check_output("systemctl show -P MainPID hello.service"))


def workers(host):
    return set(host.check_output(f"pgrep -P {main_pid(host)}").split())


def live(host):
    return Path(host.file("/srv/hello/current").linked_to).name


def summary(load, written):
    posts, gets = load["methods"].get("POST", {}), load["methods"].get("GET", {})
    return (f"{load['failed']} failed of {load['ok'] + load['failed']} {load['failures'] or ''}"
            f"(POST {posts.get('ok', 0)} ok, GET {gets.get('ok', 0)} ok), {written} rows written")


def assert_no_loss(load, written):
    assert load["failed"] == 0, load
    posts = load["methods"]["POST"]["ok"]
    assert posts > 30 and posts * 10 >= 3 * load["ok"], load
    assert written == posts, (written, load)


def gunicorn_only(ansible_playbook, **extra):
    run = ansible_playbook("converge.yml", "--tags", "gunicorn", extra_vars={"wsgi_only": "hello", **extra})
    assert run.rc == 0, run.output
    return run


def test_two_reloads_through_nginx_lose_no_write(host, http_load, measured):
    master, rows = main_pid(host), visits(host)
    with http_load(*MIXED, user="root", concurrency=CLIENTS, interval=PACE) as load:
        for _unused in range(2):
            old = workers(host)
            host.check_output("systemctl reload hello.service")
            wait_for(lambda: workers(host).isdisjoint(old), 60, "the workers to be replaced")
    written = visits(host) - rows
    measured("stack: two reloads (HUP) under mixed load", summary(load, written))
    assert main_pid(host) == master
    assert_no_loss(load, written)


def test_two_restarts_through_nginx_lose_no_write(host, http_load, measured):
    before, rows = main_pid(host), visits(host)
    with http_load(*MIXED, user="root", concurrency=CLIENTS, interval=PACE) as load:
        for _unused in range(2):
            host.check_output("systemctl restart hello.service")
            wait_for(lambda: host.service("hello.service").is_running, 30, "the service")
    written = visits(host) - rows
    measured("stack: two restarts under mixed load", summary(load, written))
    assert main_pid(host) != before
    assert_no_loss(load, written)


def test_settings_change_and_worker_recycling_through_nginx_lose_no_write(
        host, http_load, ansible_playbook, measured):
    master, rows = main_pid(host), visits(host)
    # A settings change: recycle every worker after about 50 requests.
    with http_load(*MIXED, user="root", concurrency=CLIENTS, interval=DEPLOY_PACE) as load:
        run = gunicorn_only(ansible_playbook, gunicorn_max_requests=50, gunicorn_max_requests_jitter=5)
    written = visits(host) - rows
    measured("stack: settings change (reload) under mixed load", summary(load, written))
    assert "Reload gunicorn" in run.output and main_pid(host) == master
    assert "max_requests = 50" in host.file("/etc/hello/gunicorn.conf.py").content_string
    assert_no_loss(load, written)

    load, written, recycled = load_while_recycling(
        host, http_load, *MIXED, user="root", concurrency=CLIENTS, interval=PACE)
    measured("stack: max_requests 50 for 20 s under mixed load", summary(load, written) + f", {recycled} recycled")
    assert recycled >= 10
    assert_no_loss(load, written)
    # The code-change deploy below brings the inventory's settings back.


def static_file(host, *headers):
    """(status, validators, body) of hello's style.css, served by nginx."""
    out = host.check_output(
        "curl -sS -D - --cacert /etc/ssl/wsgi-stack/ca/ca.pem --resolve hello.test:443:127.0.0.1 "
        + "-H %s " * len(headers) + "https://hello.test/static/style.css", *headers)
    head, _unused, body = out.replace("\r\n", "\n").partition("\n\n")
    fields = dict(line.split(": ", 1) for line in head.splitlines()[1:])
    fields = {name.lower(): value for name, value in fields.items()}
    return int(head.split()[1]), {name: fields.get(name) for name in ("etag", "last-modified")}, body


def test_code_change_deploy_through_nginx_loses_no_write(host, http_load, ansible_playbook, tmp_path, measured):
    """A code-change deploy under load loses no write, and a static file
    changed without changing its size gets new validators (ETag and
    Last-Modified), so that no browser keeps the old one after the deploy."""
    source = tmp_path / "hello"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with open(source / "hello" / "__init__.py", "a") as fh:
        fh.write(f"\n# release {uuid.uuid4()}\n")
    css = source / "hello" / "static" / "style.css"
    css.write_text(css.read_text().replace("light dark", "dark light", 1))
    _unused, before, _unused = static_file(host)
    old, rows = live(host), visits(host)
    with http_load(*MIXED, user="root", concurrency=CLIENTS, interval=DEPLOY_PACE, max_seconds=600) as load:
        run = ansible_playbook("converge.yml", extra_vars={
            "wsgi_only": "hello", "app_source": {"type": "directory", "path": str(source)}})
        assert run.rc == 0, run.output
        # Each client asks every DEPLOY_PACE seconds, in waves: the deploy's
        # last second after the restart may fall between two. One more round
        # reaches the new release.
        time.sleep(DEPLOY_PACE + 1)
    written = visits(host) - rows
    measured("stack: code-change deploy under mixed load", summary(load, written) + f", releases {load['releases']}")
    assert live(host) != old
    assert live(host) in load["releases"]
    assert_no_loss(load, written)
    status, after, body = static_file(host, f"If-None-Match: {before['etag']}")
    assert (status, "dark light" in body) == (200, True), (status, before, after)
    assert after["etag"] != before["etag"] and after["last-modified"] != before["last-modified"], (before, after)
    assert static_file(host, f"If-Modified-Since: {before['last-modified']}")[0] == 200
    assert static_file(host, f"If-None-Match: {after['etag']}")[0] == 304
    measured("stack: a same-size static change", f"ETag {before['etag']} -> {after['etag']}, "
             f"Last-Modified {before['last-modified']} -> {after['last-modified']}")
