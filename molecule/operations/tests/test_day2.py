"""Day-2 operations on the deployed stack, with the playbooks a user runs:
a one-off command in the live release (playbooks/run.yml), the journal of
an application (playbooks/logs.yml), maintenance mode (nginx_maintenance
through playbooks/deploy.yml), an application's worker processes and
timers across a deploy and a rollback (status.yml shows them), a new
application refused for claiming a live one's domain, and applications
removed (playbooks/remove.yml). Runs
before the resilience suite (file order) and leaves hello and hi as it
found them.
"""

import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import health, live, main_pid, vaulted_values, wait_for

CA = "/etc/ssl/wsgi-stack/ca/ca.pem"
DEFAULT = Path(__file__).resolve().parents[2] / "default"
RUN = "../../playbooks/run.yml"
LOGS = "../../playbooks/logs.yml"


@pytest.fixture(scope="module")
def secrets():
    """The vaulted values (the default scenario's, whose inventory this one
    shares), which no output may show."""
    return vaulted_values(DEFAULT / "inventory/group_vars/all/vault.yml", 2)


def said(run):
    """The lines the command printed, as the run showed them (the task's
    YAML result), one string."""
    found = re.search(r"^TASK \[wsgi.stack.gunicorn : Show what the command printed\].*?\n\S+: \[[^]]+\] => *\n(.*?)\n\n",
                      run.output, re.S | re.M)
    assert found, run.output[-3000:]
    return "\n".join(yaml.safe_load(textwrap.dedent(found.group(1)))["msg"])


def run_command(ansible_playbook, command, *args, **extra):
    return ansible_playbook(RUN, *args, extra_vars={"wsgi_only": "hello", "wsgi_command": command, **extra})


SHOW = ("echo key=$SECRET_KEY; id -un; pwd -P; echo venv=$VIRTUAL_ENV; command -v flask; "
        "grep -E '^(NoNewPrivs|CapEff)' /proc/self/status; "
        "touch instance/one-off && echo wrote shared; touch in-release 2>&1 || true")


def test_a_one_off_command_runs_in_the_live_release_as_the_service_does(host, ansible_playbook, secrets):
    """As the application's user, in its live release with the release's
    virtualenv, with its environment (masked in the output) and in the
    service's sandbox: no privileges, a read-only release, shared/ writable."""
    run = run_command(ansible_playbook, ["sh", "-c", SHOW])
    assert run.rc == 0, run.output[-3000:]
    out = said(run)
    release = live(host)
    assert "key=********" in out, out
    assert out.splitlines()[1:3] == ["hello", f"/srv/hello/releases/{release}"], out
    assert "venv=/srv/hello/current/.venv" in out, out
    assert "/srv/hello/current/.venv/bin/flask" in out, out
    assert re.search(r"NoNewPrivs:\s+1", out) and re.search(r"CapEff:\s+0+\b", out), out
    assert "wrote shared" in out and "Read-only file system" in out, out
    assert host.file("/srv/hello/shared/instance/one-off").user == "hello"
    for secret in secrets:
        assert secret not in run.output
    # The transient unit ended with the command.
    assert host.run("systemctl list-units --all --no-legend 'run-*.service' | grep -q .").rc != 0


def test_a_framework_command_given_as_key_equals_value(host, ansible_playbook):
    """-e 'wsgi_command=[...]' (a string holding a list) works as a list
    does: Flask's own command, from the release's virtualenv."""
    run = ansible_playbook(RUN, "-e", "wsgi_only=hello", "-e", 'wsgi_command=["flask","--app","hello:create_app()","routes"]')
    assert run.rc == 0, run.output[-3000:]
    assert re.search(r"health\s+GET", said(run)), said(run)


def test_a_failing_command_fails_the_run_with_its_exit_status(ansible_playbook, secrets):
    run = run_command(ansible_playbook, ["sh", "-c", "echo migrating with $SECRET_KEY; echo no such column >&2; exit 3"])
    assert run.rc != 0
    out = " ".join(run.output.split())
    assert "exited 3 in release" in out, run.output[-3000:]
    assert "migrating with ********" in out and "no such column" in out, run.output[-3000:]
    for secret in secrets:
        assert secret not in run.output


def test_check_mode_runs_nothing(host, ansible_playbook):
    host.check_output("rm -f /srv/hello/shared/instance/checked")
    run = run_command(ansible_playbook, ["touch", "instance/checked"], "--check")
    assert run.rc == 0, run.output[-3000:]
    assert "Would run touch instance/checked in" in run.output
    assert not host.file("/srv/hello/shared/instance/checked").exists


@pytest.mark.parametrize("extra, message", [
    ({"wsgi_command": "flask db upgrade"}, "Name one application and its command as a list of words"),
    ({"wsgi_command": []}, "Name one application and its command as a list of words"),
    ({"wsgi_command": '["flask", "db"'}, "Name one application and its command as a list of words"),
    ({"wsgi_only": "hello,hi", "wsgi_command": ["true"]}, "Name one application and its command"),
])
def test_a_command_without_one_application_or_as_a_string_is_refused(host, ansible_playbook, extra, message):
    run = ansible_playbook(RUN, extra_vars={"wsgi_only": "hello", **extra})
    assert run.rc != 0 and message in " ".join(run.output.split()), run.output[-3000:]
    assert "Run the command in the live release" not in run.output


def test_logs_show_the_applications_journal_with_its_secrets_masked(host, ansible_playbook, secrets):
    """A request whose path holds the secret: Gunicorn's access log line in
    the journal has it, the playbook shows it masked."""
    leak = f"/leak-{secrets[0]}"
    host.run(f"curl -s -o /dev/null --cacert {CA} --resolve hello.test:443:127.0.0.1 https://hello.test{leak}")
    run = ansible_playbook(LOGS, extra_vars={"wsgi_only": "hello", "wsgi_lines": 50})
    assert run.rc == 0, run.output[-3000:]
    assert "/leak-********" in run.output, run.output[-3000:]
    for secret in secrets:
        assert secret not in run.output
    since = ansible_playbook(LOGS, extra_vars={"wsgi_only": "hello", "wsgi_since": "10 minutes ago"})
    assert since.rc == 0 and "/leak-********" in since.output, since.output[-3000:]
    bad = ansible_playbook(LOGS, extra_vars={"wsgi_only": "hello", "wsgi_lines": "all"})
    assert bad.rc != 0 and "wsgi_lines must be a whole number" in bad.output


def maintenance(ansible_playbook, on):
    return ansible_playbook("converge.yml", "--tags", "nginx",
                            extra_vars={"wsgi_only": "hello", "nginx_maintenance": on})


def page(host, name, path="/"):
    out = host.run(f"curl -sS --cacert {CA} --resolve {name}:443:127.0.0.1 -w '\\n%{{http_code}}' https://{name}{path}")
    body, _unused, status = out.stdout.rpartition("\n")
    return int(status), body


def test_maintenance_mode_serves_the_503_page_and_leaves_the_service_running(host, ansible_playbook):
    """nginx_maintenance on one application: its site answers 503 with the
    maintenance page, its service keeps running (same process), the other
    application is untouched; turned off, the site serves again."""
    pid, other = main_pid(host), health(host, "hi.test")
    run = maintenance(ansible_playbook, True)
    assert run.rc == 0, run.output[-3000:]
    assert "hello is in maintenance: https://hello.test/ answers 503 with the maintenance page" in " ".join(run.output.split())
    status, body = page(host, "hello.test")
    assert status == 503 and "Back soon" in body, (status, body)
    assert page(host, "hello.test", "/health")[0] == 503
    assert main_pid(host) == pid and host.service("hello.service").is_running
    assert health(host, "hi.test") == other
    # The service still answers on its socket, as nginx will again.
    direct = host.check_output("curl -sS --unix-socket /run/gunicorn/hello.sock http://hello.test/health")
    assert json.loads(direct)["release"] == live(host)

    run = maintenance(ansible_playbook, False)
    assert run.rc == 0, run.output[-3000:]
    assert health(host, "hello.test")["release"] == live(host)
    assert page(host, "hello.test")[0] == 200
    assert main_pid(host) == pid


# --- processes and timers --------------------------------------------------------------
# jobs: a web process that queues work in Redis (Debian's, prepare.yml),
# an RQ worker that runs it, and two scheduled jobs, one that always fails.

JOBS = Path(__file__).resolve().parents[1] / "jobs"
ROLLBACK = "../../playbooks/rollback.yml"
STATUS = "../../playbooks/status.yml"
REDIS = "redis://127.0.0.1:6379/0"
TICK = {"name": "tick", "command": ["python", "-m", "jobs", "tick"], "on_calendar": "*:*:0/5"}
# Started by the test: a job run every few seconds would be running again
# (its last result reset) whenever status.yml looked.
FAIL = {"name": "fail", "command": ["python", "-m", "jobs", "fail"], "on_calendar": "daily"}


def jobs_app(path=JOBS, workers=2, timers=(TICK, FAIL)):
    return {"app_name": "jobs", "app_domains": ["jobs.test"], "app_source": {"type": "directory", "path": str(path)},
            "app_env": {"SECRET_KEY": "jobs-secret-key-value", "REDIS_URL": REDIS}, "app_shared_dirs": ["done"],
            "gunicorn_entry_point": "jobs:app", "gunicorn_network": True,
            "app_processes": [{"name": "worker", "command": ["rq", "worker", "--url", REDIS, "default"], "count": workers}],
            "app_timers": list(timers)}


def with_jobs(app, **extra):
    return {"wsgi_apps": [*inventory_apps(), app], "wsgi_only": "jobs", **extra}


def job(host):
    """The release whose worker ran a job queued by a POST."""
    queued = json.loads(host.check_output(f"curl -sS -X POST --cacert {CA} --resolve jobs.test:443:127.0.0.1 https://jobs.test/jobs"))
    seen = {}

    def done():
        seen.update(health(host, "jobs.test", f"/jobs/{queued['id']}"))
        return seen["done"]
    wait_for(done, 30, f"job {queued['id']}")
    return seen["release"]


def workers(host):
    """Each running instance of the worker: its main process."""
    out = host.check_output("systemctl show -p Id -p MainPID -p ActiveState 'jobs-worker@*.service'")
    units = [dict(line.split("=", 1) for line in block.splitlines()) for block in out.strip().split("\n\n") if block]
    return {u["Id"]: int(u["MainPID"]) for u in units if u["ActiveState"] == "active"}


@pytest.fixture(scope="module")
def jobs_first(host, ansible_playbook):
    """jobs deployed with two workers and both timers; the release it runs."""
    run = ansible_playbook("converge.yml", extra_vars=with_jobs(jobs_app()))
    assert run.rc == 0, run.output[-3000:]
    return run, live(host, "jobs")


def test_a_worker_runs_in_the_services_sandbox_and_takes_jobs(host, ansible_playbook, jobs_first):
    """Two instances of the worker, as the application's user with no
    privileges, run a job queued by a POST; a second deploy changes nothing."""
    pids = workers(host)
    assert sorted(pids) == ["jobs-worker@1.service", "jobs-worker@2.service"], pids
    for pid in pids.values():
        status = host.file(f"/proc/{pid}/status").content_string
        assert re.search(r"NoNewPrivs:\s+1", status) and re.search(r"CapEff:\s+0+\b", status), status
        assert host.check_output(f"ps -o user= -p {pid}").strip() == "jobs"
    assert job(host) == jobs_first[1]
    again = ansible_playbook("converge.yml", extra_vars=with_jobs(jobs_app()))
    assert again.rc == 0 and again.changed() == 0, again.recap()
    assert workers(host) == pids


def test_a_timer_fires_and_a_failed_run_shows_in_status(host, ansible_playbook, jobs_first):
    """Every 5 s, in the live release and the service's sandbox; the job
    that exits 3 is reported so by status.yml."""
    sandbox = host.check_output("systemctl show -p User -p NoNewPrivileges -p ProtectSystem -p ReadWritePaths jobs-tick.service")
    assert sorted(sandbox.splitlines()) == ["NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/srv/jobs/shared",
                                            "User=jobs"], sandbox
    ticks = "/srv/jobs/shared/done/ticks"
    wait_for(lambda: len(host.run(f"cat {ticks}").stdout.split("\n")) > 2, 30, "the timer to fire twice")
    assert host.check_output(f"tail -n 1 {ticks}").split()[1] == jobs_first[1]
    assert host.run("systemctl start jobs-fail.service").rc != 0
    run = ansible_playbook(STATUS, extra_vars=with_jobs(jobs_app()))
    assert run.rc == 0, run.output[-3000:]
    out = " ".join(run.output.split())
    assert "jobs-fail.service" in out and "last run exit-code, exit status 3" in out, run.output[-3000:]
    assert re.search(r"jobs-tick.timer active: last \w{3} \d{4}-", out), run.output[-3000:]
    assert re.search(r"jobs-worker@1.service active \(running\)", out), run.output[-3000:]


def test_processes_follow_a_deploy_and_a_rollback_and_go_when_dropped(host, ansible_playbook, jobs_first, tmp_path):
    """A code change with one worker and no failing timer: the worker
    restarts on the new release, the second instance and the failing timer
    are gone; a rollback takes the worker back to the release before."""
    before, pids = jobs_first[1], workers(host)
    source = tmp_path / "jobs"
    shutil.copytree(JOBS, source, ignore=shutil.ignore_patterns("__pycache__"))
    with open(source / "jobs.py", "a") as fh:
        fh.write("\n# a code change\n")
    changed = jobs_app(source, workers=1, timers=[TICK])
    run = ansible_playbook("converge.yml", extra_vars=with_jobs(changed))
    assert run.rc == 0, run.output[-3000:]
    after = live(host, "jobs")
    assert after != before
    now = workers(host)
    assert list(now) == ["jobs-worker@1.service"] and now["jobs-worker@1.service"] != pids["jobs-worker@1.service"], now
    assert job(host) == after
    assert host.run("systemctl is-enabled jobs-worker@2.service").stdout.strip() != "enabled"
    assert not host.file("/etc/systemd/system/jobs-fail.timer").exists
    assert not host.file("/etc/systemd/system/jobs-fail.service").exists
    assert host.service("jobs-tick.timer").is_running

    run = ansible_playbook(ROLLBACK, extra_vars=with_jobs(changed))
    assert run.rc == 0, run.output[-3000:]
    assert live(host, "jobs") == before
    assert workers(host)["jobs-worker@1.service"] != now["jobs-worker@1.service"]
    assert job(host) == before

    logs = ansible_playbook(LOGS, extra_vars=with_jobs(changed, wsgi_process="worker", wsgi_lines=40))
    assert logs.rc == 0 and "Successfully completed jobs.record(" in logs.output, logs.output[-3000:]
    assert "jobs-tick" not in logs.output


# --- applications that come and go -------------------------------------------------

EXAMPLE = DEFAULT.parents[1] / "examples" / "hello"
REMOVE = "../../playbooks/remove.yml"


def inventory_apps():
    return yaml.safe_load((DEFAULT / "inventory/group_vars/all/apps.yml").read_text())["wsgi_apps"]


def extra_app(name, path=EXAMPLE, **settings):
    return {"app_name": name, "app_domains": [f"{name}.test"], "app_source": {"type": "directory", "path": str(path)},
            "app_env": {"SECRET_KEY": f"{name}-secret-key-value"}, "app_shared_dirs": ["instance"],
            "app_hooks": [{"name": "Create the database", "command": [".venv/bin/flask", "--app", "hello", "init-db"],
                           "creates": "shared/instance/hello.sqlite"}],
            "gunicorn_entry_point": "hello:create_app()", **settings}


def deploy_extra(ansible_playbook, app):
    return ansible_playbook("converge.yml", extra_vars={"wsgi_apps": [*inventory_apps(), app], "wsgi_only": app["app_name"]})


SERVED = ["/etc/{app}/env", "/etc/systemd/system/{app}.service", "/etc/nginx/sites-available/{app}.conf",
          "/etc/ssl/wsgi-stack/{app}/fullchain.pem", "/srv/{app}/current"]


def footprint(host, app):
    """What of an application is on the server, by kind."""
    out = host.run(f"systemctl list-unit-files --no-legend '{app}.*' '{app}-*' 'wsgi-stack-candidate-{app}.*'").stdout
    paths = [path for path in (f"/etc/{app}", f"/etc/nginx/sites-available/{app}.conf", f"/etc/nginx/sites-enabled/{app}.conf",
                               f"/etc/nginx/snippets/{app}-headers.conf", f"/etc/ssl/wsgi-stack/{app}", f"/run/gunicorn/{app}.sock",
                               f"/srv/{app}/current", f"/srv/{app}/releases", f"/var/lib/wsgi-stack/units/{app}",
                               f"/var/lib/wsgi-stack/kept/{app}", f"/var/cache/wsgi-stack/packages/{app}")
             if host.file(path).exists]
    return {"units": [line.split()[0] for line in out.splitlines() if line.strip()], "paths": paths,
            "user": host.user(app).exists, "group": host.group(app).exists, "data": host.file(f"/srv/{app}/shared").exists,
            "record": host.file(f"/etc/ansible/facts.d/wsgi_stack_{app}.fact").exists}


def others(host):
    return {path.format(app=app): host.file(path.format(app=app)).sha256sum if "current" not in path
            else host.file(path.format(app=app)).linked_to for app in ("hello", "hi") for path in SERVED}


def test_a_new_application_claiming_a_live_ones_domain_is_refused_before_the_host_changes(host, ansible_playbook, jobs_first):
    """jobs is live but not in the inventory of this run; thief claims its name."""
    run = deploy_extra(ansible_playbook, extra_app("thief", app_domains=["thief.test", "jobs.test"]))
    assert run.rc != 0
    assert (f"wsgi_apps of {host.backend.host}: jobs (live on {host.backend.host}, not in its wsgi_apps) and thief "
            "both claim the domain jobs.test") in " ".join(run.output.split()), run.output[-3000:]
    assert not host.user("thief").exists and not host.file("/srv/thief").exists
    assert health(host, "jobs.test")["status"] == "ok"


def test_remove_takes_everything_but_the_data_then_the_data_after_a_tarball(host, ansible_playbook, jobs_first):
    """jobs, with its worker and timers, taken off the server."""
    before = others(host)
    run = ansible_playbook(REMOVE, extra_vars={"wsgi_remove": "jobs"})
    assert run.rc == 0, run.output[-3000:]
    assert "jobs is removed from" in " ".join(run.output.split()) and "but for its data" in run.output
    left = footprint(host, "jobs")
    assert (left["units"], left["paths"]) == ([], []), left
    assert left["user"] and left["group"] and left["data"] and left["record"], left
    assert host.run("pgrep -u jobs").rc != 0
    assert host.file("/srv/jobs/shared/done/ticks").exists
    assert host.run("nginx -t").rc == 0
    # nginx's default server refuses the name now.
    assert page(host, "jobs.test")[0] != 200
    assert others(host) == before and health(host, "hello.test") and health(host, "hi.test")
    again = ansible_playbook(REMOVE, extra_vars={"wsgi_remove": "jobs"})
    assert again.rc == 0 and again.changed() == 0, again.recap()

    run = ansible_playbook(REMOVE, extra_vars={"wsgi_remove": "jobs", "wsgi_remove_data": True})
    assert run.rc == 0, run.output[-3000:]
    backup = re.search(r"its data packed into (/var/backups/wsgi-stack/jobs-shared-\w+\.tar\.gz)", " ".join(run.output.split()))
    assert backup, run.output[-3000:]
    assert "shared/done/ticks" in host.check_output(f"tar -tzf {backup.group(1)}")
    assert footprint(host, "jobs") == {"units": [], "paths": [], "user": False, "group": False, "data": False,
                                       "record": False}
    assert not host.file("/srv/jobs").exists
    again = ansible_playbook(REMOVE, extra_vars={"wsgi_remove": "jobs", "wsgi_remove_data": True})
    assert again.rc == 0 and again.changed() == 0, again.recap()
    assert others(host) == before


def test_remove_cleans_what_a_failed_first_deploy_left(host, ansible_playbook, tmp_path):
    source = tmp_path / "broken"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with open(source / "hello" / "__init__.py", "a") as fh:
        fh.write("\nimport module_that_does_not_exist  # noqa: E402, F401\n")
    run = deploy_extra(ansible_playbook, extra_app("broken", path=source))
    assert run.rc != 0 and "No module named 'module_that_does_not_exist'" in run.output
    assert footprint(host, "broken")["user"]
    run = ansible_playbook(REMOVE, extra_vars={"wsgi_remove": "broken", "wsgi_remove_data": True})
    assert run.rc == 0, run.output[-3000:]
    assert footprint(host, "broken") == {"units": [], "paths": [], "user": False, "group": False, "data": False,
                                         "record": False}
    assert host.run("nginx -t").rc == 0


@pytest.mark.parametrize("extra, message", [
    ({"wsgi_remove": "hello"}, "hello is still in wsgi_apps of"),
    # An inventory that lost the server's list removes nothing.
    ({"wsgi_remove": "hi", "wsgi_apps": "hello"}, "has no wsgi_apps: list the applications it keeps"),
    ({"wsgi_remove": "../hello"}, "-e wsgi_remove=NAME names the application to remove"),
])
def test_remove_refuses_what_the_inventory_still_lists_or_cannot_say(host, ansible_playbook, extra, message):
    run = ansible_playbook(REMOVE, extra_vars=extra)
    assert run.rc != 0 and message in " ".join(run.output.split()), run.output[-3000:]
    assert health(host, "hello.test")["status"] == "ok" and health(host, "hi.test")["status"] == "ok"
