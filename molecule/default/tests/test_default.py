"""The full stack, deployed by playbooks/deploy.yml: two applications on one server.

Requests go to nginx inside the container, and from the controller through the
ports Docker publishes on localhost. The test files run in name order (the
hostile-application tests last), and the last ones deploy again.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import HELLO_MIXED as MIXED
from conftest import health, vaulted_values, visits

CA = "/etc/ssl/wsgi-stack/ca/ca.pem"
SCENARIO = Path(__file__).resolve().parent.parent
EXAMPLE = SCENARIO.parent.parent / "examples" / "hello"
APPS = {"hello": "hello.test", "hi": "hi.test"}


def live(host, app):
    return Path(host.file(f"/srv/{app}/current").linked_to).name


def main_pid(host, app):
    return int(host.check_output(f"systemctl show -P MainPID {app}.service"))


@pytest.fixture(scope="module")
def secrets():
    """The vaulted values, which no output may show."""
    return vaulted_values(SCENARIO / "inventory/group_vars/all/vault.yml", 2)


@pytest.fixture(scope="module")
def controller_ca(host, tmp_path_factory):
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_text(host.file(CA).content_string)
    return str(path)


def published(host, port):
    """The localhost port Docker publishes the container's port on."""
    out = subprocess.run(["docker", "port", host.backend.host, f"{port}/tcp"],
                         check=True, capture_output=True, text=True).stdout
    return int(out.split()[0].rsplit(":", 1)[1])


# --- as deploy.yml left it --------------------------------------------------------

@pytest.mark.parametrize("app", APPS)
def test_each_app_answers_on_its_own_name_with_its_own_release(host, app):
    assert health(host, APPS[app]) == {"status": "ok", "release": live(host, app)}


def test_the_first_deploy_started_each_service_once_and_reloaded_nginx_once(host):
    """converge deployed both applications on a fresh server, idempotence
    changed nothing: each service was started, never restarted on top (the
    new release and its environment were there before it started), and
    nginx, started for the first application's site, was reloaded once, for
    the second's, although the tls and nginx roles both asked each time."""
    log = host.check_output("journalctl --no-pager --output cat --unit hello.service --unit hi.service "
                            "--unit nginx.service")
    events = [line.split(" - ")[0] for line in log.splitlines() if re.match(r"(Started|Reloaded) ", line)]
    assert {event: events.count(event) for event in events if "nginx" not in event or "Reloaded" in event} == {
        "Started hello.service": 1, "Started hi.service": 1, "Reloaded nginx.service": 1}, events


def converge_tasks():
    """What each task of Molecule's converge (the first deploy of both
    applications on a fresh server) did: {file:line: {name, ran, skipped}},
    written by the task_counts callback (molecule.yml). The converge is the
    first run that is not in check mode and asked an application's health."""
    runs = sorted(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "task-counts").glob("*.json"))
    for run in map(lambda path: json.loads(path.read_text()), runs):
        if not run["check"] and any(t["name"] == "Ask for the health URL over HTTPS" and t["ran"]
                                    for t in run["tasks"].values()):
            return run["tasks"]
    raise AssertionError(f"no converge among {len(runs)} runs")


# Server-wide work: the python role's probe and install, nginx's install and
# sandbox, the host CA.
SERVER_WIDE = ("roles/python/tasks/host.yml:", "roles/python/tasks/install.yml:", "roles/nginx/tasks/install.yml:",
               "roles/nginx/tasks/service.yml:", "roles/tls/tasks/selfsigned.yml:")
CA_TASKS = {"Create the host's CA directory", "Create the CA's key", "Create the CA's signing request",
            "Create the CA's certificate", "Record the CA's permitted domains"}


def test_the_first_deploy_did_the_server_wide_work_once_for_two_apps():
    """Counted from what the converge's tasks did: each task that sets up
    the server (Python, nginx and its sandbox, the host CA) ran on one host
    of the run, however many applications the server has, and nginx's
    install ran at all (so that the count can fail)."""
    tasks = converge_tasks()
    server_wide = {path: task for path, task in tasks.items()
                   if any(part in path for part in SERVER_WIDE)
                   and ("selfsigned.yml" not in path or task["name"] in CA_TASKS)}
    ran = {f"{task['name']} ({path.rsplit('/', 1)[-1]})": task["ran"] for path, task in server_wide.items()}
    assert {name: len(hosts) for name, hosts in ran.items() if len(hosts) > 1} == {}, ran
    installs = [hosts for name, hosts in ran.items() if name.startswith("Install nginx (")]
    assert len(installs) == 1 and [host.rsplit("/", 1)[-1] for host in installs[0]] == ["hello"], ran


def test_the_two_apps_run_different_releases(host):
    assert live(host, "hello") != live(host, "hi")


@pytest.mark.parametrize("app", APPS)
def test_controller_reaches_each_app_through_the_published_port(host, app, controller_ca):
    port = published(host, 443)
    name = APPS[app]
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", controller_ca,
                          "--resolve", f"{name}:{port}:127.0.0.1", f"https://{name}:{port}/health"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["release"] == live(host, app)
    redirect = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                               "--resolve", f"{name}:{published(host, 80)}:127.0.0.1",
                               f"http://{name}:{published(host, 80)}/x"], capture_output=True, text=True, check=False)
    assert redirect.stdout == f"301 https://{name}/x"


@pytest.mark.parametrize("app", APPS)
def test_each_app_has_its_own_user_env_file_units_and_site(host, app):
    assert host.user(app).exists
    env = host.file(f"/etc/{app}/env")
    assert (env.user, env.group, env.mode) == ("root", app, 0o640)
    assert host.service(f"{app}.socket").is_running
    assert host.service(f"{app}.service").is_running
    assert host.file(f"/etc/nginx/sites-enabled/{app}.conf").is_symlink
    assert host.file(f"/etc/ssl/wsgi-stack/{app}/fullchain.pem").exists


def test_settings_given_per_app_reach_that_app_only(host):
    assert "threads = 8" in host.file("/etc/hi/gunicorn.conf.py").content_string
    assert "threads = 32" in host.file("/etc/hello/gunicorn.conf.py").content_string


def test_status_reports_releases_services_and_certificates_and_changes_nothing(host, ansible_playbook):
    run = ansible_playbook("../../playbooks/status.yml")

    assert run.rc == 0, run.output
    assert run.changed() == 0, run.output
    report = " ".join(run.output.split())  # long lines may be folded
    for app, name in APPS.items():
        assert f"release {live(host, app)} (previous " in report
        assert f"service {app}.service active since" in report
        assert re.search(rf"certificate \(selfsigned\) for {re.escape(name)}(, [\w.]+)*: expires \w+", report)


@pytest.mark.one_distro
def test_a_limit_must_reach_the_applications_hosts(host, ansible_playbook):
    server = host.backend.host
    run = ansible_playbook("../../playbooks/status.yml", "--limit", server)
    assert run.rc != 0
    assert f"write --limit '{server}*'" in " ".join(run.output.split()), run.output

    run = ansible_playbook("../../playbooks/status.yml", "--limit", f"{server}*")
    assert run.rc == 0, run.output
    assert {f"{server}/{app}" for app in APPS} <= set(run.recap())


# --- a broken release of one application --------------------------------------------

def inventory_apps():
    return {app["app_name"]: app for app in
            yaml.safe_load((SCENARIO / "inventory/group_vars/all/apps.yml").read_text())["wsgi_apps"]}


def broken_source(tmp_path, name):
    """The example app with ways to fail chosen by BREAK in its environment,
    so that one release serves several cases, each failing for real: when
    Python imports it, when Gunicorn loads it or when it answers. Without
    BREAK it cannot import either."""
    source = tmp_path / name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__"))
    init = source / "hello" / "__init__.py"
    init.write_text(init.read_text() + '''
_BREAK = os.environ.get("BREAK", "import")
if _BREAK == "import":
    import module_that_does_not_exist  # noqa: E402, F401
_create_app = create_app


def create_app():  # noqa: F811
    if _BREAK == "env":
        os.environ["PAYMENT_API_KEY"]  # needed at runtime, not in app_env_required
    if _BREAK == "write":
        (Path(__file__).parent / "cache.txt").write_text("written into the release")
    app = _create_app()
    if _BREAK == "health":
        app.view_functions["health"] = lambda: ("database unreachable", 500)
    return app
''')
    return {"type": "directory", "path": str(source)}


def fresh_app(tmp_path, name):
    """A first deploy that cannot start."""
    return {**inventory_apps()["hi"], "app_name": name, "app_domains": [f"{name}.test"],
            "app_source": broken_source(tmp_path, name)}


def test_one_failing_application_leaves_the_others_deploying(host, ansible_playbook, secrets, tmp_path):
    """Four applications of one server in one run: hi, then `fresh`, whose
    first deploy cannot start, then `refused`, whose nginx setting its role
    refuses, then hello. refused is stopped before any host changes; fresh
    leaves nothing half-live and its site answers 503 with the maintenance
    page; hello, listed after both, is deployed and checked all the same."""
    before = {app: (live(host, app), main_pid(host, app)) for app in APPS}
    apps = inventory_apps()
    refused = {**apps["hi"], "app_name": "refused", "app_domains": ["refused.test"], "nginx_hsts_max_age": "forever"}

    run = ansible_playbook("converge.yml", extra_vars={
        "wsgi_apps": [apps["hi"], fresh_app(tmp_path, "fresh"), refused, apps["hello"]]})

    assert run.rc != 0
    message = " ".join(run.output.split())
    server = host.backend.host
    recap = run.recap()
    # refused: named by its role's argument specs, and never on the host.
    assert "argument 'nginx_hsts_max_age' is of type str" in message, run.output[-3000:]
    assert (recap[f"{server}/refused"]["failed"], recap[f"{server}/refused"]["changed"]) == (1, 0), recap
    assert not host.file("/srv/refused").exists and not host.user("refused").exists
    # fresh: started once before going live, which it never did.
    assert re.search(r"fresh on \S+ failed to deploy \(", message), run.output
    assert "No module named 'module_that_does_not_exist'" in message, run.output[-3000:]
    assert ("There was no earlier release: https://fresh.test/ answers 503 with the maintenance page "
            "until a deploy succeeds.") in message, run.output[-3000:]
    assert not host.file("/srv/fresh/current").exists
    assert not host.service("fresh.socket").is_running and not host.service("fresh.service").is_running
    page = host.run("curl -sS --cacert %s --resolve fresh.test:443:127.0.0.1 -w '%%{http_code}' https://fresh.test/",
                    CA).stdout
    assert page.endswith("503") and "Back soon" in page
    # hi before and hello after it: deployed (nothing to change) and checked.
    for app in APPS:
        assert recap[f"{server}/{app}"]["failed"] == 0 and f"{app} answers" in message
        assert (live(host, app), main_pid(host, app)) == before[app]
    for secret in secrets:
        assert secret not in run.output


def failure_cases(tmp_path):
    """(what is wrong, the settings, what the message must name). Every
    cause but the last is caught before the switch: by the hooks, or by the
    start of the new release. The last goes live, then nginx -t refuses the
    site: the release, the configuration, the service unit and the
    certificate the deploy had changed are put back."""
    hello = inventory_apps()["hello"]
    broken = broken_source(tmp_path, "broken")
    source = {"type": "directory", "path": str(tmp_path / "code-change")}
    shutil.copytree(EXAMPLE, source["path"], ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "code-change" / "VARIANT").write_text("a new release\n")
    migration = {"type": "directory", "path": str(tmp_path / "migration")}
    shutil.copytree(EXAMPLE, migration["path"], ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "migration" / "MIGRATION").write_text("0042\n")

    def env(**extra):
        return {"app_env": {**hello["app_env"], **extra}}

    cases = [
        ("failing migration hook", {"app_source": migration, "app_hooks": [
            {"name": "Migrate", "command": [".venv/bin/python", "-c",
                                            "import sys; sys.exit('migration 0042: column visits.email exists')"]}]},
         "migration 0042: column visits.email exists"),
        ("import error", {"app_source": broken, **env(HELLO_GREETING="Hi")},
         "ModuleNotFoundError: No module named 'module_that_does_not_exist'"),
        ("env key missing at runtime", {"app_source": broken, **env(BREAK="env")}, "KeyError: 'PAYMENT_API_KEY'"),
        ("writes to its release", {"app_source": broken, **env(BREAK="write")}, "Read-only file system"),
        ("health answers 500", {"app_source": broken, **env(BREAK="health")},
         "answered /health with HTTP 500: database unreachable"),
        ("wrong entry point", {"app_source": broken, **env(BREAK="none"), "gunicorn_entry_point": "hello:app"},
         "Failed to find attribute 'app' in 'hello'."),
        ("setting Gunicorn cannot start with", {"app_source": broken, **env(BREAK="none"), "gunicorn_settings": {
            "logger_class": "no_such_module.Logger"}}, "no_such_module"),
        ("nginx directive nginx -t refuses", {"app_source": source, "gunicorn_threads": 6, "gunicorn_network": True,
                                              "app_domains": ["hello.test", "www.hello.test"],
                                              "nginx_extra_config": "no_such_directive on;"},
         'unknown directive "no_such_directive"'),
    ]
    return cases


SERVED_BY = ["/etc/hello/env", "/etc/hello/gunicorn.conf.py", "/etc/systemd/system/hello.service",
             "/etc/systemd/system/hello.socket", "/etc/nginx/sites-available/hello.conf",
             "/etc/ssl/wsgi-stack/hello/fullchain.pem"]


# The failure paths are deploy.yml's and the roles' logic, the same on every
# distro (each of the eight causes passed on both in full runs 5 to 12); the
# system's part, the sandbox that makes a release read-only, is tested by the
# gunicorn scenario on both.
@pytest.mark.one_distro
def test_each_failed_deploy_leaves_the_live_release_serving_and_says_why(
        host, ansible_playbook, http_load, secrets, tmp_path, measured):
    """Ways a deploy of hello fails (see failure_cases), under one mixed load (one request
    in three a POST that writes a row): none fails a request or loses a
    write, the release and every file that serves it stay what they were,
    and each message names the cause."""
    release, files = live(host, "hello"), {path: host.file(path).sha256sum for path in SERVED_BY}
    rows = visits(host)
    messages = {}
    with http_load(*MIXED, user="root", concurrency=4, interval=0.25, max_seconds=900) as load:
        for case, settings, cause in failure_cases(tmp_path):
            run = ansible_playbook("converge.yml", extra_vars={"wsgi_only": "hello", **settings})
            assert run.rc != 0, (case, run.output[-3000:])
            said = re.search(r"failed to deploy \((.*?)(?: Origin:| PLAY RECAP|$)", " ".join(run.output.split()))
            message = messages[case] = said.group(1)
            assert cause in message, (case, message)
            assert live(host, "hello") == release, case
            assert health(host, "hello.test")["release"] == release, case
            assert {path: host.file(path).sha256sum for path in SERVED_BY} == files, case
            for secret in secrets:
                assert secret not in run.output, case
    written = visits(host) - rows
    for case, message in messages.items():
        measured(f"failed deploy, {case}", message)
    measured("failed deploys under mixed load", f"{load['failed']} failed of {load['ok'] + load['failed']}, "
             f"POST {load['methods'].get('POST', {}).get('ok', 0)} ok, {written} rows written")
    assert load["failed"] == 0, load
    assert written == load["methods"]["POST"]["ok"] > 10, (written, load)
    # Before the switch, the live release is said to be still live; after
    # it, rolled back to; both times answering its health check.
    for case, message in messages.items():
        went_live = case.startswith("nginx")
        said = f"Rolled back to release {release}" if went_live else f"Release {release} is still live"
        assert said in message and "and it answers its health check." in message, (case, message[-2000:])
    put_back = messages["nginx directive nginx -t refuses"]
    for path in ("/etc/hello/gunicorn.conf.py", "/etc/systemd/system/hello.service",
                 "/etc/ssl/wsgi-stack/hello/fullchain.pem"):
        assert path in put_back, put_back[-2000:]


def test_after_the_failed_deploy_check_mode_reports_no_change_and_no_secret(host, ansible_playbook, secrets):
    """What the failed deploys put back is what served before: a deploy of
    hello would change nothing (Molecule's idempotence step ran the real
    second deploy of both applications)."""
    run = ansible_playbook("converge.yml", "--check", "--diff", extra_vars={"wsgi_only": "hello"})
    assert run.rc == 0, run.output
    assert run.changed() == 0, run.output
    for secret in secrets:
        assert secret not in run.output


# --- one part of one application (these leave hi changed) ----------------------------

def site(host, app):
    return host.file(f"/etc/nginx/sites-available/{app}.conf").content_string


@pytest.mark.one_distro
def test_tags_tls_nginx_change_the_front_of_one_app_and_not_its_code(host, ansible_playbook):
    before = {app: (live(host, app), main_pid(host, app)) for app in APPS}
    hello_site = site(host, "hello")

    # A source that does not exist: it would fail the run if the app role ran.
    run = ansible_playbook("converge.yml", "--tags", "tls,nginx", extra_vars={
        "wsgi_only": "hi", "nginx_client_max_body_size": "3m",
        "app_source": {"type": "directory", "path": "/nonexistent"}})

    assert run.rc == 0, run.output
    assert "client_max_body_size 3m;" in site(host, "hi")
    assert site(host, "hello") == hello_site
    assert {app: (live(host, app), main_pid(host, app)) for app in APPS} == before

    # The inventory's settings again, through the same tags.
    run = ansible_playbook("converge.yml", "--tags", "tls,nginx", extra_vars={"wsgi_only": "hi"})
    assert run.rc == 0, run.output
    assert "client_max_body_size 10m;" in site(host, "hi")


def test_tags_app_deploy_the_code_of_one_app_and_not_its_front(host, ansible_playbook, tmp_path):
    source = tmp_path / "hi"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "VARIANT").write_text("hi, second version\n")
    sites = {app: site(host, app) for app in APPS}
    hello = (live(host, "hello"), main_pid(host, "hello"))
    old = live(host, "hi")

    # An nginx setting that would change hi's site if the nginx role ran.
    run = ansible_playbook("converge.yml", "--tags", "app", extra_vars={
        "wsgi_only": "hi", "nginx_client_max_body_size": "1k",
        "app_source": {"type": "directory", "path": str(source)}})

    assert run.rc == 0, run.output
    assert live(host, "hi") != old
    assert health(host, "hi.test")["release"] == live(host, "hi")
    assert {app: site(host, app) for app in APPS} == sites
    assert (live(host, "hello"), main_pid(host, "hello")) == hello


def test_rollback_playbook_takes_one_app_back_and_leaves_the_other(host, ansible_playbook):
    previous = Path(host.file("/srv/hi/previous").linked_to).name
    hello = (live(host, "hello"), main_pid(host, "hello"))

    # Without a name it would roll back every application: refused.
    run = ansible_playbook("../../playbooks/rollback.yml")
    assert run.rc != 0 and "Name the application to roll back: -e wsgi_only=NAME" in run.output
    assert live(host, "hi") != previous

    # The selector of deploy.yml, and nothing fails on the server's own host.
    run = ansible_playbook("../../playbooks/rollback.yml", extra_vars={"wsgi_only": "hi"})

    assert run.rc == 0, run.output
    assert live(host, "hi") == previous
    assert health(host, "hi.test")["release"] == previous
    assert (live(host, "hello"), main_pid(host, "hello")) == hello
