"""The gunicorn role as a user meets it: the app answers on its socket, only
nginx's group may connect, the sandbox holds, and restarts, crashes, reloads
and deploys under load lose no request.

The tests run in file order (every one takes the `host` fixture, so pytest
keeps that order); the last ones change the service and deploy new code.
"""

import json
import re
import shutil
import uuid
from pathlib import Path

import pytest

from conftest import exposure, wait_for

HELLO = Path(__file__).resolve().parents[3] / "examples" / "hello"
SOCKET = "/run/gunicorn/hello.sock"
CONFIG = "/etc/hello/gunicorn.conf.py"


def curl(host, path="/health", user="www-data", method="GET"):
    return host.run(f"runuser -u {user} -- curl -sS -X {method} --max-time 20 --unix-socket {SOCKET} http://hello{path}")


def health(host):
    result = curl(host)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def live(host):
    return Path(host.file("/srv/hello/current").linked_to).name


def main_pid(host):
    return int(host.check_output("systemctl show -P MainPID hello.service"))


def workers(host, master):
    return sorted(host.check_output(f"pgrep -P {master}").split())


def service_run(ansible_playbook, *args, **extra_vars):
    """The gunicorn role alone (service.yml), with extra variables."""
    return ansible_playbook("service.yml", *args, extra_vars=extra_vars or None)


# --- as converge left it ------------------------------------------------------

def test_socket_and_service_are_enabled_and_running(host):
    for unit in ("hello.socket", "hello.service"):
        assert host.service(unit).is_enabled
        assert host.service(unit).is_running
    assert host.check_output("systemctl show -P Type hello.service") == "notify"
    assert host.process.get(pid=main_pid(host)).user == "hello"


def test_app_answers_on_the_socket_with_the_live_release(host):
    assert health(host) == {"status": "ok", "release": live(host)}


def test_only_root_and_the_socket_group_can_connect(host):
    sock = host.file(SOCKET)
    assert sock.is_socket
    assert (sock.user, sock.group, sock.mode) == ("root", "www-data", 0o660)
    # Neither the application's own user nor any other account gets in.
    connect = f"python3 -c 'import socket; socket.socket(socket.AF_UNIX).connect(\"{SOCKET}\")'"
    assert host.run(f"runuser -u www-data -- {connect}").rc == 0
    for user in ("hello", "nobody"):
        result = host.run(f"runuser -u {user} -- {connect}")
        assert result.rc != 0 and "PermissionError" in result.stderr, (user, result.stderr)


def test_sandbox_scores_two_or_less_and_the_app_still_writes_its_data(host, measured):
    score = exposure(host, "hello.service")
    measured("systemd-analyze security hello.service", score)
    assert score <= 2.0
    # The app writes its SQLite database under shared/ through the sandbox.
    first = json.loads(curl(host, "/visits", method="POST").stdout)["visits"]
    assert json.loads(curl(host, "/visits", method="POST").stdout)["visits"] == first + 1


def test_service_has_no_capabilities_and_sees_the_system_read_only(host):
    pid = main_pid(host)
    status = host.file(f"/proc/{pid}/status").content_string
    assert re.search(r"^CapEff:\s+0+$", status, re.M)
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
    # The service's own view of the file system: mount point -> options.
    mounts = {}
    for line in host.file(f"/proc/{pid}/mountinfo").content_string.splitlines():
        fields = line.split()
        mounts[fields[4]] = set(fields[5].split(","))
    for path in ("/", "/usr", "/etc", "/srv/hello"):
        covering = max((m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")), key=len)
        assert "ro" in mounts[covering], (path, covering)
    assert "rw" in mounts["/srv/hello/shared"]
    assert "rw" in mounts["/tmp"]  # its own private /tmp


def test_workers_follow_the_cpu_count(host):
    expected = max(2, int(host.check_output("nproc")))
    assert len(workers(host, main_pid(host))) == expected
    config = host.file(CONFIG)
    assert (config.user, config.group, config.mode) == ("root", "hello", 0o640)
    assert 'worker_class = "gthread"' in config.content_string


# --- restarts, crashes and reloads under load ---------------------------------

def test_restarts_under_load_fail_no_request(host, http_load, measured):
    before = main_pid(host)
    with http_load("--unix-socket", SOCKET) as load:
        for _ in range(2):
            host.check_output("systemctl restart hello.service")
            wait_for(lambda: host.service("hello.service").is_running, 30, "the service")
    measured("two restarts under 32 clients", f"{load['failed']} failed of {load['ok'] + load['failed']}, "
             f"slowest request {load['max_latency']} s")
    assert load["failed"] == 0, load
    assert load["ok"] > 100
    assert main_pid(host) != before


def test_kill_9_of_the_master_is_recovered_by_systemd(host, http_load, measured):
    before = main_pid(host)
    restarts = int(host.check_output("systemctl show -P NRestarts hello.service"))
    with http_load("--unix-socket", SOCKET) as load:
        host.check_output(f"kill -9 {before}")
        wait_for(lambda: main_pid(host) not in (0, before) and host.service("hello.service").is_running,
                 30, "systemd to restart the service")
        served_after = host.check_output("date +%s.%N")
    assert int(host.check_output("systemctl show -P NRestarts hello.service")) == restarts + 1
    measured("kill -9 under 32 clients", f"{load['failed']} failed of {load['ok'] + load['failed']} "
             f"{load['failures']}, gap (slowest request) {load['max_latency']} s")
    # Only requests in flight at the kill may fail; later ones wait for the new master.
    assert load["failed"] <= load["concurrency"], load
    late = [e for e in load["events"] if "failure" in e and e["at"] > float(served_after)]
    assert not late, late
    assert health(host)["status"] == "ok"


def test_config_change_reloads_gracefully(host, http_load, ansible_playbook):
    master = main_pid(host)
    old_workers = workers(host, master)
    with http_load("--unix-socket", SOCKET) as load:
        run = service_run(ansible_playbook, gunicorn_max_requests=500)
        assert run.rc == 0, run.output
        wait_for(lambda: set(workers(host, master)).isdisjoint(old_workers), 60, "the workers to be replaced")
    assert "max_requests = 500" in host.file(CONFIG).content_string
    assert "hello.service" in run.output and "Reload gunicorn" in run.output
    assert main_pid(host) == master  # HUP, not a restart
    assert load["failed"] == 0, load


def test_unit_change_restarts_the_service(host, ansible_playbook):
    master = main_pid(host)
    run = service_run(ansible_playbook, gunicorn_graceful_timeout=20)
    assert run.rc == 0, run.output
    assert host.check_output("systemctl show -P TimeoutStopUSec hello.service") == "30s"
    assert main_pid(host) != master
    # Back to the converged settings: the role restarts once more, and then
    # the converge playbook changes nothing (idempotence ran before verify).
    assert service_run(ansible_playbook).rc == 0


def test_check_mode_on_the_converged_host_changes_nothing(host, ansible_playbook):
    run = ansible_playbook("converge.yml", "--check", "--diff")
    assert run.rc == 0, run.output
    assert run.changed() == 0, run.output


@pytest.mark.parametrize("extra, message", [
    ({"gunicorn_worker_class": "fast"}, "gunicorn_worker_class"),
    ({"gunicorn_entry_point": "hello create_app"}, "gunicorn_entry_point"),
    ({"gunicorn_settings": {"workerz": 3}}, "not Gunicorn settings: workerz"),
    ({"gunicorn_settings": {"timeout": "soon"}}, "timeout"),
    ({"app_name": "legacy"}, "would replace legacy.service"),
])
def test_bad_input_fails_without_changing_the_host(host, ansible_playbook, extra, message):
    config = host.file(CONFIG).content_string
    run = service_run(ansible_playbook, **extra)
    assert run.rc != 0
    assert message in run.output
    assert run.changed() == 0
    assert host.file(CONFIG).content_string == config
    assert health(host)["status"] == "ok"


# --- a new release under load -------------------------------------------------

def test_code_change_deploy_under_load_serves_the_new_release(host, http_load, ansible_playbook, tmp_path, measured):
    src = tmp_path / "hello"
    shutil.copytree(HELLO, src)
    with open(src / "hello" / "__init__.py", "a") as fh:
        fh.write(f"\n# release {uuid.uuid4()}\n")
    old = live(host)
    # 32 clients, each at most 10 requests a second: unpaced, the load takes
    # both CPUs and the virtualenv build under it takes minutes.
    with http_load("--unix-socket", SOCKET, interval=0.1) as load:
        run = ansible_playbook("converge.yml", extra_vars={"hello_src": str(src)})
        assert run.rc == 0, run.output
    new = live(host)
    measured("code-change deploy under 32 clients", f"{load['failed']} failed of {load['ok'] + load['failed']}, "
             f"releases served {load['releases']}")
    assert new != old
    assert load["failed"] == 0, load
    assert health(host)["release"] == new
    assert set(load["releases"]) == {old, new}
