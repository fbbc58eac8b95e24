"""Fixtures shared by the testinfra suites of every Molecule scenario.

Molecule's verifier runs pytest with its own environment (inventory, ansible.cfg
with the collection's paths), so a test can run ansible-playbook against the
scenario's instances exactly as a user would.
"""

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pip._internal.models.index import PyPI

RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.M,
)


@dataclass
class PlaybookRun:
    rc: int
    output: str

    def recap(self):
        """Per-host counters of the PLAY RECAP, as ints."""
        return {
            m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
            for m in RECAP.finditer(self.output)
        }

    def changed(self):
        return sum(host["changed"] for host in self.recap().values())


@pytest.fixture(scope="session")
def ansible_playbook():
    """Run a playbook of the scenario against its instances.

    ansible_playbook("converge.yml", "--check", "--diff", extra_vars={...})
    """
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]

    def run(playbook, *args, extra_vars=None):
        cmd = ["ansible-playbook", "-i", inventory, str(scenario / playbook), *args]
        if extra_vars:
            cmd += ["--extra-vars", json.dumps(extra_vars)]
        proc = subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=900,
            check=False,
            env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
        )
        return PlaybookRun(proc.returncode, proc.stdout)

    return run


@dataclass
class CaseRun:
    """What one case of a batch did: whether it failed, how many tasks
    changed, and every string its failed results carried, whitespace folded."""
    failed: bool
    changed: int
    text: str


def _strings(value):
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


@pytest.fixture(scope="session")
def ansible_cases(tmp_path_factory):
    """Run a playbook of the scenario once for many sets of extra variables:
    each case is an alias of the scenario's instance (same container), whose
    variables molecule/shared/cases.yml sets as --extra-vars would. For input
    that must be refused, one run instead of one per case.

    ansible_cases("site.yml", {"case-id": {...extra vars...}}) -> {"case-id": CaseRun}
    """
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    inventory = yaml.safe_load(Path(os.environ["MOLECULE_INVENTORY_FILE"]).read_text())

    def run(playbook, cases):
        def aliases(hosts):
            return {f"{name}~{case}": {**(hostvars or {}), "ansible_host": name, "wsgi_case": extra}
                    for name, hostvars in hosts.items() for case, extra in cases.items()}

        groups = {group: {**body, "hosts": aliases(body["hosts"])} if body.get("hosts") else body
                  for group, body in inventory.items()}
        path = tmp_path_factory.mktemp("cases") / "inventory.yml"
        path.write_text(yaml.safe_dump(groups))
        proc = subprocess.run(
            ["ansible-playbook", "-i", str(path), "--forks", str(len(cases) + 1),
             str(scenario.parent / "shared" / "cases.yml"),
             "--extra-vars", json.dumps({"wsgi_case_playbook": str(scenario / playbook)})],
            capture_output=True, text=True, timeout=900, check=False,
            env={**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_NOCOLOR": "1"})
        try:
            report = json.loads(proc.stdout)
        except ValueError as err:
            raise AssertionError(f"no JSON report: {proc.stdout[-2000:]} {proc.stderr[-2000:]}") from err
        results = {}
        for play in report["plays"]:
            for task in play["tasks"]:
                for name, result in task["hosts"].items():
                    if result.get("failed") or result.get("unreachable"):
                        results.setdefault(name, []).append(result)
        outcome = {}
        for name, stats in report["stats"].items():
            if "~" not in name:  # localhost, of the scenario's own plays
                continue
            case = name.rsplit("~", 1)[1]
            text = " ".join(" ".join(_strings(results.get(name, []))).split())
            outcome[case] = CaseRun(stats["failures"] > 0 or stats["unreachable"] > 0, stats["changed"], text)
        return outcome

    return run


def assert_refused(run, message):
    """A case of ansible_cases whose input had to be refused: it failed,
    changed nothing, and its error says `message`."""
    assert run.failed and run.changed == 0, run
    assert message in run.text, run.text[-2000:]


# What the controller and the playbooks' logic decide (input checks, how a
# source becomes a release, playbook selection, what a failed deploy puts
# back) is the same on every distro: such tests run on Debian 12 only, so
# that `make test` stays within its budget. The roles' work on the system
# (packages, units, sandbox, nginx) is tested on both.
def pytest_configure(config):
    config.addinivalue_line("markers", "one_distro: the same on every distro, run on Debian 12 only")


# Test files run in name order, each file's tests in their own order; a file
# that must come after the others (it leaves the host changed) sets RUN_LAST.
def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: bool(getattr(item.module, "RUN_LAST", False)))
    if os.environ.get("MOLECULE_DISTRO", "debian12") == "debian12":
        return
    skip = pytest.mark.skip(reason="the same on every distro: its run is on Debian 12")
    for item in items:
        if item.get_closest_marker("one_distro"):
            item.add_marker(skip)


# Figures the tests measured, printed after the test summary (see
# pytest_terminal_summary): resolutions quote them.
MEASURED = []


@pytest.fixture(scope="session")
def measured():
    """measured("restart under load", "0 failed of 9,000"): report a figure."""
    return lambda name, value: MEASURED.append(f"{name}: {value}")


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.section("measured")
        for line in MEASURED:
            terminalreporter.write_line(line)


def exposure(host, unit):
    """The overall exposure score `systemd-analyze security` gives a unit (0 to 10)."""
    out = host.check_output(f"systemd-analyze security --no-pager {unit}")
    return float(re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d+)", out).group(1))


# Load on the example app through nginx, one request in three a POST that
# writes a row; a new connection per request, as browsers arriving during a
# restart (the default scenario's hello.test, its host CA).
HELLO_MIXED = ("--url", "https://hello.test/health", "--resolve", "127.0.0.1",
               "--cafile", "/etc/ssl/wsgi-stack/ca/ca.pem", "--post-every", "3")


def health(host, name, path="/health"):
    """What an application answers on `path` through nginx: HTTPS to its real
    name from inside the server, the certificate checked against the host's CA."""
    out = host.run(f"curl -sS --max-time 20 --cacert /etc/ssl/wsgi-stack/ca/ca.pem "
                   f"--resolve {name}:443:127.0.0.1 'https://{name}{path}'")
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout)


def sockets_held(host, pid):
    """How many sockets a hello worker holds: its listening socket and every
    connection it serves or keeps alive, which is all a kill -9 of it may
    fail. Read as the app's user: root in the container lacks CAP_SYS_PTRACE."""
    return int(host.check_output(f"runuser -u hello -- find /proc/{pid}/fd -lname 'socket:*' | wc -l"))


def visits(host):
    """Rows the example app's POST /visits wrote, read as its user (a
    root-owned WAL file would lock the app out)."""
    return int(host.check_output(
        "runuser -u hello -- python3 -c \"import sqlite3; print(sqlite3.connect("
        "'/srv/hello/shared/instance/hello.sqlite').execute('select count(*) from visits').fetchone()[0])\""))


def written_ids(host, request_ids):
    """Which of these request ids the example app's POST /visits stored."""
    if not request_ids:
        return set()
    query = "select request_id from visits where request_id in (%s)" % ",".join("?" * len(request_ids))
    script = ("import json, sqlite3, sys; ids = json.load(sys.stdin); "
              "db = sqlite3.connect('/srv/hello/shared/instance/hello.sqlite'); "
              f"print(json.dumps([r[0] for r in db.execute({query!r}, ids)]))")
    out = host.check_output(f"echo {shlex.quote(json.dumps(sorted(request_ids)))} | "
                            f"runuser -u hello -- python3 -c {shlex.quote(script)}")
    return set(json.loads(out))


def recycled_since(host, since):
    """How many hello workers Gunicorn replaced after max_requests since `since`."""
    return int(host.check_output(
        f"journalctl -u hello.service --since '{since}' | grep -c 'Autorestarting worker' || true"))


def load_while_recycling(host, http_load, *target, seconds=20, **options):
    """Load for `seconds` while max_requests recycles hello's workers:
    (the load's summary, rows written, workers recycled)."""
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    rows = visits(host)
    with http_load(*target, **options) as load:
        host.run(f"sleep {seconds}")
    return load, visits(host) - rows, recycled_since(host, since)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def http_load(host):
    """Constant load from inside the instance while a with-block runs.

    with http_load("--unix-socket", "/run/gunicorn/hello.sock") as load:
        ...restart something...
    load["failed"], load["ok"], load["releases"]: see molecule/shared/wsgi-load,
    which the scenario's prepare installs as /usr/local/bin/wsgi-load.
    """

    @contextlib.contextmanager
    def run(*target, user="www-data", concurrency=32, interval=0, max_seconds=300):
        base = f"/tmp/wsgi-load-{uuid.uuid4().hex[:8]}"
        cmd = shlex.join(["runuser", "-u", user, "--", "/usr/local/bin/wsgi-load", *target,
                          "--concurrency", str(concurrency), "--interval", str(interval),
                          "--max-seconds", str(max_seconds),
                          "--stop-file", f"{base}.stop", "--out", f"{base}.json"])
        host.check_output(f"setsid -f {cmd} >{base}.log 2>&1 </dev/null")
        wait_for(lambda: host.file(f"{base}.json.running").exists, 30, "the load to get its first answer")
        result = {}
        try:
            yield result
        finally:
            host.check_output(f"touch {base}.stop")
            wait_for(lambda: host.file(f"{base}.json").exists, 60, "the load's summary")
            result.update(json.loads(host.file(f"{base}.json").content_string))

    return run


def package_index_names():
    """The host names the installers reach for packages: the index in pip's
    configuration on this machine (as the containers have it), else pip's
    default, PyPI, and the host PyPI serves its files from."""
    configured = os.environ.get("PIP_INDEX_URL") or subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
        capture_output=True, text=True, check=False).stdout.strip()
    if configured:
        return [urllib.parse.urlsplit(configured).hostname]
    return [urllib.parse.urlsplit(PyPI.simple_url).hostname, PyPI.file_storage_domain]


def vaulted_values(path, count):
    """The values of a vaulted variables file (count of them, each long
    enough to be masked), which no output may show."""
    out = subprocess.run(["ansible-vault", "view", str(path)], check=True, capture_output=True, text=True).stdout
    values = [str(v) for v in yaml.safe_load(out).values()]
    assert len(values) == count and all(len(v) > 8 for v in values)
    return values


def live(host, app="hello"):
    """The release an application serves: the name `current` points to."""
    return Path(host.file(f"/srv/{app}/current").linked_to).name


def main_pid(host, app="hello"):
    """The main process of an application's service."""
    return int(host.check_output(f"systemctl show -P MainPID {app}.service"))
