"""Applications shaped like our users', deployed together by
playbooks/deploy.yml (molecule/apps/shapes.py writes them): each answers over
HTTPS on its own name, reads and writes its database, has its static files
served by nginx, and keeps its data through a redeploy of new code and a
rollback. The tests run in file order: the redeploy and the rollback last."""

import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import wait_for

CA = "/etc/ssl/wsgi-stack/ca/ca.pem"
HERE = Path(__file__).resolve().parent.parent
SOURCES = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "apps"
# The Flask applications, and where each mounts its notes and its static files.
FLASK = {"setup": "", "flit": "", "hatch": "", "pdm": "/blog", "poetry": "", "plain": ""}
STATIC = {**{name: f"{mount}/static/app.css" for name, mount in FLASK.items()}, "django": "/static/notes/app.css"}
# Flask's instance folder is in the venv for a package imported from it (src/
# layouts), and in the release for one imported from the source tree (flat
# layouts, a bare module): the release's root comes first on sys.path. Both
# are links into shared/.
INSTANCE = {"setup": ".venv/var/setup_notes-instance", "flit": "instance",
            "hatch": ".venv/var/hatch_notes-instance", "pdm": ".venv/var/pdm_notes-instance",
            "poetry": "instance", "plain": "instance"}
NOTES = {**{name: f"{mount}/notes" for name, mount in FLASK.items()}, "django": "/notes"}
# What each application was sent, so that later tests know what it must still have.
SENT = {}


def curl(host, name, path, *args, check=True):
    """HTTPS to an application's name from inside the server, its CA checked:
    (status, headers, body)."""
    out = host.run(
        f"curl -sS --max-time 60 --cacert {CA} --resolve {name}.test:443:127.0.0.1 -D - "
        f"{' '.join(shlex.quote(a) for a in args)} 'https://{name}.test{path}'")
    if check:
        assert out.rc == 0, out.stderr
    head, _unused, body = out.stdout.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, _unused, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]) if lines[0] else 0, headers, body


def django_post(host, origin, *form):
    """A form posted to Django's /notes as a browser on `origin` sends it,
    for its CSRF check: the token from the cookie Django set, and the Origin."""
    jar = f"/tmp/django-{uuid.uuid4().hex[:8]}"
    curl(host, "django", "/notes", "-c", jar)
    token = host.check_output(f"awk '$6 == \"csrftoken\" {{print $7}}' {jar}")
    return curl(host, "django", "/notes", "-b", jar, "-H", f"X-CSRFToken: {token}", "-H", f"Origin: {origin}", *form)


def add_note(host, name, text):
    if name == "django":
        # The Origin must match the name behind the proxy.
        status, _unused, body = django_post(host, "https://django.test", "--data-urlencode", f"text={text}")
    else:
        status, _unused, body = curl(host, name, NOTES[name], "--data-urlencode", f"text={text}")
    assert status == 201, body
    SENT.setdefault(name, []).append(text)


def notes(host, name):
    status, _unused, body = curl(host, name, NOTES[name])
    assert status == 200, body
    return json.loads(body)


def generation(n):
    subprocess.run([sys.executable, str(HERE / "shapes.py"), str(SOURCES), str(n)], check=True)


@pytest.mark.parametrize("name", [*FLASK, "django"])
def test_each_app_writes_and_reads_its_database_over_https(host, name):
    add_note(host, name, f"{name} first")
    add_note(host, name, f"{name} second")
    answer = notes(host, name)
    assert answer["notes"] == SENT[name]
    assert answer["version"] == "1"


@pytest.mark.parametrize("name", [*FLASK, "django"])
def test_static_files_come_from_nginx_without_the_app(host, name):
    probe = uuid.uuid4().hex
    status, headers, body = curl(host, name, f"{STATIC[name]}?{probe}")
    assert status == 200
    assert f"/* {name}, generation 1 */" in body
    # nginx's static location sets the cache lifetime; the app never does.
    assert headers["cache-control"] == "max-age=604800"
    # The application's access log, which does show a request it answered.
    curl(host, name, f"{NOTES[name]}?{probe}-app")

    def logged():
        return host.check_output(f"journalctl -u {name}.service --no-pager | grep {probe} || true")

    wait_for(lambda: f"{probe}-app" in logged(), 10, "the application's access log")
    assert f"?{probe} " not in logged()


@pytest.mark.parametrize("name", INSTANCE)
def test_flask_instance_folder_is_kept_in_shared(host, name):
    """Where Flask puts it: the venv's var/ for an installed package, the
    source tree's instance/ for a module on sys.path."""
    # The venv's prefix is the release's real path.
    release = host.file(f"/srv/{name}/current").linked_to
    assert notes(host, name)["instance"] == f"{release}/{INSTANCE[name]}"
    link = host.file(f"{release}/{INSTANCE[name]}")
    assert link.is_symlink and link.linked_to == f"/srv/{name}/shared/{INSTANCE[name]}"
    # A nested path gets its parents: root's in the release, the app's in shared/.
    parent = host.file(str(Path(link.path).parent))
    assert (host.check_output(f"stat -c %U {link.path}"), parent.user, parent.mode) == ("root", "root", 0o755)
    shared = host.file(f"/srv/{name}/shared/{INSTANCE[name]}")
    assert (shared.user, shared.group, shared.mode) == (name, name, 0o750)
    assert host.file(f"{shared.path}/notes.sqlite").user == name


def test_an_app_mounted_under_a_path_builds_its_links_with_it(host):
    assert notes(host, "pdm")["static"] == "/blog/static/app.css"
    status, headers, _unused = curl(host, "pdm", "/")
    assert (status, headers["location"]) == (302, "https://pdm.test/blog/")
    assert curl(host, "pdm", "/notes")[0] == 404


def test_a_20_mb_upload_reaches_the_app_and_a_larger_one_is_refused(host):
    host.check_output("head -c 20971520 /dev/urandom > /tmp/upload.bin")
    digest = host.check_output("sha256sum /tmp/upload.bin").split()[0]
    status, _unused, body = curl(host, "poetry", "/upload", "--data-binary", "@/tmp/upload.bin",
                                 "-H", "Content-Type: application/octet-stream")
    assert status == 200, body
    assert json.loads(body) == {"size": 20971520, "sha256": digest}
    host.check_output("head -c 23068672 /dev/urandom > /tmp/upload.bin")
    assert curl(host, "poetry", "/upload", "--data-binary", "@/tmp/upload.bin")[0] == 413


def test_a_request_longer_than_the_proxy_timeout_gets_a_504(host):
    assert curl(host, "poetry", "/slow?seconds=1")[0] == 200
    status, _unused, body = curl(host, "poetry", "/slow?seconds=8")
    assert status == 504
    assert "<html" in body.lower()


def test_django_runs_behind_the_proxy_with_its_names_from_the_env_file(host, measured):
    status, _unused, body = curl(host, "django", "/health")
    assert status == 200 and json.loads(body)["secure"] is True
    measured("Django deployed", host.check_output("/srv/django/current/.venv/bin/python -m django --version"))
    # Its CSRF check holds: a form posted from another origin is refused.
    assert django_post(host, "https://evil.test", "-d", "text=x")[0] == 403
    # A name that is not in ALLOWED_HOSTS gets a 400 from Django itself.
    assert host.run("curl -s -o /dev/null -w '%{http_code}' --unix-socket /run/gunicorn/django.sock "
                    "-H 'Host: other.test' http://x/health").stdout == "400"


def pypi_packages(host):
    status, _unused, body = curl(host, "pypi", "/simple/notes-probe/")
    return body if status == 200 else ""


def test_a_published_server_installed_by_name_stores_uploads(host):
    host.check_output(
        "mkdir -p /tmp/probe && cd /tmp/probe && "
        "printf 'Metadata-Version: 2.1\\nName: notes-probe\\nVersion: 1.0\\n' > PKG-INFO && "
        "tar czf notes_probe-1.0.tar.gz PKG-INFO")
    status, _unused, body = curl(host, "pypi", "/", "-F", ":action=file_upload", "-F", "name=notes-probe",
                                 "-F", "version=1.0", "-F", "content=@/tmp/probe/notes_probe-1.0.tar.gz")
    assert status == 200, body
    assert "notes_probe-1.0.tar.gz" in pypi_packages(host)
    assert host.file("/srv/pypi/shared/notes_probe-1.0.tar.gz").user == "pypi"
    # Its source is named by the hash of the file the index served.
    wheel = host.check_output("ls /srv/pypi/current/ | grep '^pypiserver-2.4.1-.*whl$'")
    digest = host.check_output(f"sha256sum /srv/pypi/current/{wheel} | cut -c1-12")
    assert host.file("/srv/pypi/current/SOURCE").content_string.strip() == digest


def pinned_gunicorn():
    """The Gunicorn that `plain` pins in the requirements shapes.py wrote."""
    return re.search(r"^gunicorn==(\S+)$", (SOURCES / "plain" / "requirements.txt").read_text(), re.M).group(1)


def test_an_app_that_pins_gunicorn_runs_its_pin(host):
    pin = pinned_gunicorn()
    assert pin in host.check_output("/srv/plain/current/.venv/bin/gunicorn --version")
    assert pin not in host.check_output("/srv/flit/current/.venv/bin/gunicorn --version")
    # Its workers run the gthread shim (they log when they do not).
    assert "accept shim" not in host.check_output("journalctl -u plain.service --no-pager")


def test_a_code_change_redeploy_keeps_every_apps_data(host, ansible_playbook):
    generation(2)
    run = ansible_playbook("converge.yml", extra_vars={"apps_generation": 2})
    assert run.rc == 0, run.output[-3000:]
    assert f"plain: the release installs Gunicorn {pinned_gunicorn()}, pinned by the application" in run.output
    for name in [*FLASK, "django"]:
        answer = notes(host, name)
        assert (answer["version"], answer["notes"]) == ("2", SENT[name]), name
        assert f"/* {name}, generation 2 */" in curl(host, name, STATIC[name])[2], name
    # The migration of generation 2 ran before the switch (its column exists),
    # init-db did not run again (the notes above are still there).
    columns = host.check_output("runuser -u hatch -- python3 -c \"import sqlite3; print([r[1] for r in "
                                "sqlite3.connect('/srv/hatch/shared/.venv/var/hatch_notes-instance/notes.sqlite')"
                                ".execute('PRAGMA table_info(note)')])\"")
    assert "stars" in columns
    assert "2.4.2" in host.check_output("/srv/pypi/current/.venv/bin/python -m pip show pypiserver")
    assert "notes_probe-1.0.tar.gz" in pypi_packages(host)
    for name in [*FLASK, "django"]:
        add_note(host, name, f"{name} on generation 2")


def test_a_failing_migration_leaves_the_live_release_serving(host, ansible_playbook):
    generation(3)
    run = ansible_playbook("converge.yml", extra_vars={"apps_generation": 3, "wsgi_only": "hatch"})
    assert run.rc != 0
    assert "duplicate column name: text" in run.output, run.output[-3000:]
    assert "is still live" in run.output
    answer = notes(host, "hatch")
    assert (answer["version"], answer["notes"]) == ("2", SENT["hatch"])


def test_a_rollback_keeps_every_apps_data(host, ansible_playbook):
    run = ansible_playbook("../../playbooks/rollback.yml",
                           extra_vars={"wsgi_only": [*FLASK, "django", "pypi"]})
    assert run.rc == 0, run.output[-3000:]
    for name in [*FLASK, "django"]:
        answer = notes(host, name)
        assert (answer["version"], answer["notes"]) == ("1", SENT[name]), name
    assert "2.4.1" in host.check_output("/srv/pypi/current/.venv/bin/python -m pip show pypiserver")
    assert "notes_probe-1.0.tar.gz" in pypi_packages(host)


def test_a_changed_setting_that_shapes_the_release_builds_a_new_one(host, ansible_playbook):
    """The same code with one more shared path is another release: the
    setting applies at once, not with the next code change."""
    generation(1)  # the code the rollback made live
    release = host.file("/srv/plain/current").linked_to
    run = ansible_playbook("converge.yml", extra_vars={"wsgi_only": "plain", "app_shared_dirs": ["instance", "uploads"]})
    assert run.rc == 0, run.output[-3000:]
    assert host.file("/srv/plain/current").linked_to != release
    assert host.file("/srv/plain/current/SOURCE").content_string == host.file(f"{release}/SOURCE").content_string
    assert host.file("/srv/plain/current/uploads").linked_to == "/srv/plain/shared/uploads"
    assert notes(host, "plain")["notes"] == SENT["plain"]
