"""The app role as a team lives it: deploy, redeploy, new code, broken deploy, rollback.

The tests run in file order and build on each other: converge deployed v1
(examples/hello); later tests deploy other versions through the same
converge playbook with extra variables, as `ansible-playbook -e` would.
Every test takes the `host` fixture, even when it does not use it: pytest
groups tests by parametrized fixtures, and a test without it would be moved
out of this order.
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import assert_refused, package_index_names

SCENARIO = Path(__file__).resolve().parent.parent
HELLO = SCENARIO.parent.parent / "examples" / "hello"
BASE = "/srv/hello"
# The rollback playbook the collection ships, run as a user would.
ROLLBACK = "../../playbooks/rollback.yml"
# Both installers of the app role (app_installer), and the uv it installs.
# pip, the fallback, runs the same tasks on every distro: beyond the index
# test (pip's trust store differs between Debian 12 and 13) it is tested on
# Debian 12 only, to keep `make test` within its budget.
INSTALLERS = ["uv", "pip"]
INSTALLERS_ONE_DISTRO_FOR_PIP = [
    "uv", pytest.param("pip", marks=pytest.mark.skipif(
        os.environ.get("MOLECULE_DISTRO", "debian12") != "debian12", reason="pip's run of this is on Debian 12"))]
UV_VERSION = yaml.safe_load((SCENARIO.parents[1] / "roles" / "app" / "defaults" / "main" / "main.yml").read_text())["app_uv_version"]
# The Gunicorn every release installs (wsgi.stack.common's default).
GUNICORN = yaml.safe_load((SCENARIO.parents[1] / "roles" / "common" / "defaults" / "main.yml").read_text())["app_gunicorn_version"]
# What each installer says when a hash does not match.
HASH_MISMATCH = {"uv": "Hash mismatch", "pip": "DO NOT MATCH THE HASHES"}


@pytest.fixture(scope="module")
def secrets():
    out = subprocess.run(
        ["ansible-vault", "view", "--vault-password-file", str(SCENARIO / "vault-password"), str(SCENARIO / "vault.yml")],
        check=True, capture_output=True, text=True,
    ).stdout
    import yaml

    return yaml.safe_load(out)


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    """A copy of the example app whose content (and so release id) differs by `tag`."""

    def make(tag):
        dest = tmp_path_factory.mktemp(f"hello-{tag}")
        shutil.copytree(HELLO, dest, dirs_exist_ok=True)
        with open(dest / "hello" / "__init__.py", "a") as fh:
            fh.write(f"\n# variant {tag}\n")
        return str(dest)

    return make


def live(host):
    return Path(host.file(f"{BASE}/current").linked_to).name


def served(host):
    return json.loads(host.check_output("curl -sf --retry 10 --retry-connrefused --retry-delay 1 http://127.0.0.1:8000/health"))["release"]


def releases(host):
    return sorted(host.check_output(f"ls {BASE}/releases").split())


def deploy(ansible_playbook, *args, **extra_vars):
    return ansible_playbook("converge.yml", *args, extra_vars=extra_vars or None)


# --- v1, as converge left it -------------------------------------------------

def test_user_is_a_system_account_without_login(host):
    user = host.user("hello")
    assert user.group == "hello"
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000
    assert host.check_output("getent shadow hello | cut -d: -f2") in ("!", "*", "!*")


def test_layout_and_permissions(host):
    rel = live(host)
    assert host.file(f"{BASE}/current").is_symlink
    assert host.file(f"{BASE}/releases/{rel}/REVISION").content_string.strip() == rel
    for path in (BASE, f"{BASE}/releases", f"{BASE}/releases/{rel}"):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "root", 0o755), path
    shared = host.file(f"{BASE}/shared")
    assert (shared.user, shared.group, shared.mode) == ("hello", "hello", 0o750)
    assert host.file(f"{BASE}/releases/{rel}/instance").linked_to == f"{BASE}/shared/instance"
    assert host.file(f"{BASE}/releases/{rel}/hello.cfg").linked_to == f"{BASE}/shared/hello.cfg"
    cfg = host.file(f"{BASE}/shared/hello.cfg")
    assert cfg.is_file and (cfg.user, cfg.group, cfg.mode) == ("hello", "hello", 0o640)
    world_writable = host.check_output(f"find {BASE} /etc/hello ! -type l -perm -o+w")
    assert world_writable == ""


def test_env_file_is_readable_by_root_and_the_app_group_only(host):
    env = host.file("/etc/hello/env")
    assert (env.user, env.group, env.mode) == ("root", "hello", 0o640)
    assert host.file("/etc/hello").mode == 0o750
    assert host.run("sudo -u nobody cat /etc/hello/env").rc != 0


SYSTEMD_READER = """\
cat > /etc/systemd/system/envprobe.service <<'UNIT'
[Service]
Type=oneshot
EnvironmentFile=/etc/hello/env
ExecStart=/bin/sh -c 'printenv {key} > /run/envprobe.out'
UNIT
systemctl daemon-reload && systemctl start envprobe.service && cat /run/envprobe.out
"""


@pytest.mark.parametrize("reader", [SYSTEMD_READER, "sh -c 'set -a; . /etc/hello/env; printenv {key}'"], ids=["systemd", "shell"])
def test_env_values_reach_systemd_and_shell_unchanged(host, secrets, reader):
    for key, value in (("HELLO_TRICKY", secrets["vault_hello_tricky"]), ("SECRET_KEY", secrets["vault_hello_secret_key"])):
        out = host.run(reader.format(key=key))
        assert out.rc == 0, out.stderr
        assert out.stdout == value + "\n"


def test_hook_initialised_the_shared_database_once(host):
    db = host.file(f"{BASE}/shared/instance/hello.sqlite")
    assert db.exists and db.user == "hello"


def test_service_serves_the_live_release(host):
    assert served(host) == live(host)


def test_secrets_absent_from_service_properties_and_process_list(host, secrets):
    shown = host.check_output("systemctl show hello.service") + host.check_output("ps auxww")
    assert secrets["vault_hello_secret_key"] not in shown


def test_check_mode_on_converged_host_changes_nothing(host, ansible_playbook, secrets):
    run = ansible_playbook("converge.yml", "--check", "--diff")
    assert run.rc == 0, run.output
    assert run.changed() == 0, run.output
    assert secrets["vault_hello_secret_key"] not in run.output


def test_no_secret_in_verbose_diff_output_even_when_the_env_changes(ansible_playbook, host, secrets):
    old = secrets["vault_hello_secret_key"]
    new = "rotated-" + hashlib.sha256(old.encode()).hexdigest()[:16]
    env = {"SECRET_KEY": new, "HELLO_TRICKY": secrets["vault_hello_tricky"], "HELLO_GREETING": "Hello"}
    run = deploy(ansible_playbook, "-vvv", "--diff", app_env=env)
    assert run.rc == 0, run.output[-3000:]
    assert run.changed() >= 1
    restored = deploy(ansible_playbook, "-vvv", "--diff")
    assert restored.rc == 0, restored.output[-3000:]
    for output in (run.output, restored.output):
        for secret in (old, new, "second line", "not a comment"):
            assert secret not in output
    assert served(host) == live(host)


# --- v2: new code ------------------------------------------------------------

def test_deploy_of_new_code_switches_and_keeps_shared_data(ansible_playbook, host, variant):
    v1 = live(host)
    host.run_expect([0], "curl -sf -X POST http://127.0.0.1:8000/visits")
    host.run_expect([0], f"sudo -u hello sh -c 'echo written-by-{v1} > {BASE}/current/hello.cfg'")
    run = deploy(ansible_playbook, app_source={"type": "directory", "path": variant("v2")})
    assert run.rc == 0, run.output[-3000:]
    v2 = live(host)
    assert v2 != v1
    assert host.file(f"{BASE}/previous").linked_to == f"{BASE}/releases/{v1}"
    assert served(host) == v2
    # The visit recorded by v1 is counted by v2: same shared database, and
    # the run-once init-db hook did not wipe it.
    assert json.loads(host.check_output("curl -sf -X POST http://127.0.0.1:8000/visits"))["visits"] == 2
    assert host.file(f"{BASE}/releases/{v2}/hello.cfg").content_string == f"written-by-{v1}\n"
    assert set(releases(host)) == {v1, v2}


def test_failing_hook_aborts_and_leaves_the_live_release_serving(ansible_playbook, host, variant, secrets):
    before = live(host)
    # A hook that dumps its environment as it fails: its output is shown,
    # with the environment's values masked.
    run = deploy(
        ansible_playbook,
        app_source={"type": "directory", "path": variant("broken")},
        app_hooks=[{"name": "Migrate", "command": ["/bin/sh", "-c", "echo migration exploded >&2; env >&2; exit 3"]}],
    )
    assert run.rc != 0
    assert "failed at" in run.output and "the live release is unchanged" in run.output
    # In the failure message itself, not only in the hook task's output.
    assert re.search(r"the live release is unchanged\..*migration exploded.*SECRET_KEY=\*{8}", " ".join(run.output.split()))
    for secret in secrets.values():
        assert secret not in run.output
    assert live(host) == before and served(host) == before
    assert before in releases(host) and len(releases(host)) == 2


def test_hook_timeout_aborts_the_deploy(ansible_playbook, host, variant):
    before = live(host)
    run = deploy(
        ansible_playbook,
        app_source={"type": "directory", "path": variant("slow")},
        app_hooks=[{"name": "Hang", "command": ["/bin/sleep", "60"], "timeout": 2}],
    )
    assert run.rc != 0
    assert live(host) == before and len(releases(host)) == 2


# --- rollback ----------------------------------------------------------------

def test_rollback_returns_to_the_previous_release(ansible_playbook, host):
    v2 = live(host)
    v1 = Path(host.file(f"{BASE}/previous").linked_to).name
    run = ansible_playbook(ROLLBACK, extra_vars={"app_name": "hello"})
    assert run.rc == 0, run.output[-3000:]
    assert live(host) == v1 and served(host) == v1
    # The two visits recorded before (by v1 and v2) survive the rollback.
    assert json.loads(host.check_output("curl -sf -X POST http://127.0.0.1:8000/visits"))["visits"] == 3
    # The release rolled back from is kept, and is now the previous one.
    assert v2 in releases(host)
    assert Path(host.file(f"{BASE}/previous").linked_to).name == v2


def test_rollback_to_a_named_release(ansible_playbook, host):
    target = Path(host.file(f"{BASE}/previous").linked_to).name
    run = ansible_playbook(ROLLBACK, extra_vars={"app_name": "hello", "app_rollback_to": target})
    assert run.rc == 0, run.output[-3000:]
    assert live(host) == target and served(host) == target


def test_rollback_to_an_unknown_release_fails_clearly(ansible_playbook, host):
    before = live(host)
    run = ansible_playbook(ROLLBACK, extra_vars={"app_name": "hello", "app_rollback_to": "0000deadbeef"})
    assert run.rc != 0
    assert "release 0000deadbeef is not on the host" in run.output
    assert live(host) == before


# --- retention ---------------------------------------------------------------

def test_old_releases_are_removed_but_never_the_live_or_previous(ansible_playbook, host, variant):
    # The earlier tests left at least two: with the new one, one must go.
    assert len(releases(host)) >= 2
    run = deploy(ansible_playbook, app_source={"type": "directory", "path": variant("r3")}, app_keep_releases=2)
    assert run.rc == 0, run.output[-3000:]
    kept = releases(host)
    assert len(kept) == 2
    assert live(host) in kept
    assert Path(host.file(f"{BASE}/previous").linked_to).name in kept


# --- bad input fails before any change ----------------------------------------
# Each case: the run fails naming the variable, changes nothing, and the live
# release still answers.

@pytest.fixture
def unchanged(host):
    """The live release, checked again after the test: still live, still answering."""
    before = live(host)
    yield
    assert live(host) == before and served(host) == before


@pytest.mark.one_distro
def test_missing_required_key_fails_naming_it(host, ansible_playbook, secrets, unchanged):
    run = deploy(ansible_playbook, app_env={"HELLO_GREETING": "Hi", "HELLO_TRICKY": secrets["vault_hello_tricky"]})
    assert run.rc != 0
    assert "app_env lacks required keys for hello: SECRET_KEY" in run.output
    assert run.changed() == 0
    assert "second line" not in run.output


PATH_REFUSED = "app_shared_dirs and app_shared_files must be relative paths without empty"
# Each: (the extra variables, what the error must say).
BAD_INPUT = {
    "debug-mode": ({"app_env": {"SECRET_KEY": "x" * 20, "FLASK_DEBUG": "1"}},
                   "app_env turns on debug mode (FLASK_DEBUG)"),
    "source-type": ({"app_source": {"type": "svn", "path": "/tmp"}}, "app_source"),
    "dotdot": ({"app_shared_dirs": ["instance", "../../../tmp/escaped"]}, PATH_REFUSED),
    "absolute": ({"app_shared_files": ["/etc/passwd"]}, PATH_REFUSED),
    "newline": ({"app_shared_dirs": ["instance\n"]}, PATH_REFUSED),
    "root": ({"app_name": "root"}, "app_user 'root' is an existing account that this collection did not create"),
    "www-data": ({"app_user": "www-data"}, "app_user 'www-data' is an existing account"),
    "system-group": ({"app_group": "adm"}, "app_group 'adm' is an existing group that this collection did not create"),
    "etc-ssl": ({"app_name": "ssl"}, "app_env_file's directory /etc/ssl exists and is not this application's"),
    "env-in-etc": ({"app_env_file": "/etc/hello.env"},
                   "app_env_file's directory /etc exists and is not this application's"),
    "nginx": ({"app_name": "nginx"}, "app_name 'nginx' is reserved by wsgi.stack"),
    "ca": ({"app_name": "ca"}, "app_name 'ca' is reserved by wsgi.stack"),
    "keep-one": ({"app_keep_releases": 1}, "app_keep_releases must be at least 2"),
    "env-key-newline": ({"app_env": {"SECRET_KEY": "x" * 20, "BAD\n": "1"}},
                        "app_env has keys that are not valid variable names"),
    "hook-string": ({"app_hooks": [{"name": "Init", "command": ".venv/bin/flask --app hello init-db"}]},
                    "app_hooks' command must be a list of program and arguments"),
    "hook-creates": ({"app_hooks": [{"name": "Init", "command": ["true"], "creates": "../../etc/passwd"}]},
                     "app_hooks 'creates' must be relative paths without '..'"),
    "old-gunicorn": ({"app_gunicorn_version": "23.0.0"},
                     "app_gunicorn_version must be a Gunicorn release from 27.0.0 up to, not including, 28"),
}


@pytest.fixture(scope="module")
def bad_input_runs(host, ansible_cases):
    """Every case of BAD_INPUT in one run of converge.yml, and what it left:
    the live release still live and answering, nothing escaped, the system's
    accounts and directories as they were."""
    before = live(host)
    runs = ansible_cases("converge.yml", {case: extra for case, (extra, _unused) in BAD_INPUT.items()})
    after = {
        "live": live(host) == before and served(host) == before,
        "escaped": host.file("/tmp/escaped").exists,
        "root": (host.user("root").shell, host.user("root").home),
        "www-data": host.user("www-data").home,
        "/etc/ssl": (host.file("/etc/ssl").group, host.file("/etc/ssl").mode),
    }
    return runs, after


@pytest.mark.one_distro
@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_refused_before_any_change(host, bad_input_runs, case):
    runs, after = bad_input_runs
    assert_refused(runs[case], BAD_INPUT[case][1])
    assert after == {"live": True, "escaped": False, "root": ("/bin/bash", "/root"), "www-data": "/var/www",
                     "/etc/ssl": ("root", 0o755)}


@pytest.mark.one_distro
def test_rollback_to_a_path_is_refused(ansible_playbook, host, unchanged):
    before = live(host)
    run = ansible_playbook(ROLLBACK, extra_vars={"app_name": "hello", "app_rollback_to": "../../../etc"})
    assert run.rc != 0
    assert "app_rollback_to must be a release id" in run.output
    assert run.changed() == 0 and live(host) == before


# --- a hostile application -----------------------------------------------------

def test_links_the_app_plants_in_shared_are_not_followed_by_root(ansible_playbook, host):
    """shared/ is the app's only writable place: a compromised app links a
    shared path to a root-owned directory, and the next deploy must not hand
    that directory over."""
    host.check_output("install -d -o root -g root -m 0755 /opt/victim")
    host.check_output(f"runuser -u hello -- ln -sfn /opt/victim {BASE}/shared/uploads")
    run = deploy(ansible_playbook, app_shared_dirs=["instance", "uploads"])
    assert run.rc == 0, run.output[-3000:]
    victim = host.file("/opt/victim")
    assert (victim.user, victim.group, victim.mode) == ("root", "root", 0o755)
    host.check_output(f"rm {BASE}/shared/uploads")


# --- the installer and its cache ------------------------------------------------

@contextlib.contextmanager
def package_index_closed(host):
    """Any package index access from the host fails while inside: pip's and
    uv's global configs name a closed port instead of whatever index the
    host uses."""
    host.run_expect([0], "cp /etc/pip.conf /etc/pip.conf.orig 2>/dev/null || touch /etc/pip.conf.orig; "
                         "printf '[global]\\nindex-url = http://127.0.0.1:9/simple\\n' > /etc/pip.conf; "
                         "mkdir -p /etc/uv && printf 'index-url = \"http://127.0.0.1:9/simple\"\\n' > /etc/uv/uv.toml")
    try:
        yield
    finally:
        host.run_expect([0], "mv /etc/pip.conf.orig /etc/pip.conf; rm -r /etc/uv")


def test_unchanged_dependencies_need_no_package_index(ansible_playbook, host, variant):
    """A code change whose dependencies the cache holds is built from it
    alone: the deploy works with the package index unreachable, its names
    resolving to a closed address. (The index URL stays the same: uv's
    cache is kept per index.)"""
    names = " ".join(package_index_names())
    host.check_output(f"cp /etc/hosts /etc/hosts.orig && echo '127.0.0.9 {names}' >> /etc/hosts")
    try:
        # -v: the build's output says which way it installed.
        run = deploy(ansible_playbook, "-v", app_source={"type": "directory", "path": variant("offline")})
    finally:
        host.check_output("cat /etc/hosts.orig > /etc/hosts && rm /etc/hosts.orig")
    assert run.rc == 0, run.output[-3000:]
    assert "Installed from the package cache alone" in run.output
    assert served(host) == live(host)


def test_the_live_release_needs_neither_the_cache_nor_old_releases(ansible_playbook, host, variant):
    rel = live(host)
    host.check_output(f"rm -rf /var/cache/wsgi-stack/packages/hello; "
                      f"find {BASE}/releases -mindepth 1 -maxdepth 1 ! -name {rel} -exec rm -rf {{}} +")
    host.check_output("systemctl restart hello.service")
    assert served(host) == rel
    host.run_expect([0], f"{BASE}/current/.venv/bin/python -c 'import flask, gunicorn, hello'")
    # The next build makes the cache again.
    run = deploy(ansible_playbook, app_source={"type": "directory", "path": variant("recache")})
    assert run.rc == 0, run.output[-3000:]
    assert served(host) == live(host) != rel
    cache = host.file("/var/cache/wsgi-stack/packages/hello")
    assert (cache.user, cache.mode) == ("wsgi-stack-build", 0o700)


# --- other sources -------------------------------------------------------------

OTHER_APP = {"app_hooks": [], "app_env": {"SECRET_KEY": "not-a-real-secret-for-source-tests"}}


def git_repo(path):
    """Make `path` a git repository with one commit on main; return the commit."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "release"]):
        subprocess.run(git + args, cwd=path, check=True, capture_output=True)
    return subprocess.run(git + ["rev-parse", "HEAD"], cwd=path, check=True, capture_output=True, text=True).stdout.strip()


def minimal_app(path, requirements):
    """A bare WSGI app with only a requirements file, as a directory source."""
    path.mkdir()
    (path / "requirements.txt").write_text(requirements)
    (path / "wsgi.py").write_text("def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n")
    return {"type": "directory", "path": str(path)}


@pytest.mark.one_distro
def test_an_application_pinning_an_unsupported_gunicorn_stops_before_the_host_changes(ansible_playbook, host, tmp_path):
    # As in apps that once ran on a PaaS: the server pinned in requirements.txt.
    run = deploy(ansible_playbook, app_name="oldpin", app_source=minimal_app(tmp_path / "oldpin", "gunicorn==21.2.0\n"),
                 **OTHER_APP)
    assert run.rc != 0
    assert "the application pins Gunicorn 21.2.0 (requirements.txt: gunicorn==21.2.0)" in run.output, run.output[-3000:]
    assert f"app_gunicorn_version is {GUNICORN}" in run.output
    assert "unsatisfiable" not in run.output and "ResolutionImpossible" not in run.output
    assert not host.file("/srv/oldpin").exists and not host.user("oldpin").exists


@pytest.mark.one_distro
def test_wheel_artifact_source_is_its_hash(ansible_playbook, host, variant, tmp_path):
    # Built from a copy: building in place would leave build/ in the example.
    subprocess.run(["python", "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), variant("wheel")], check=True)
    wheel = next(tmp_path.glob("hello-*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()[:12]
    run = deploy(ansible_playbook, app_name="srcwheel", app_source={"type": "artifact", "path": str(wheel)}, **OTHER_APP)
    assert run.rc == 0, run.output[-3000:]
    assert host.file("/srv/srcwheel/current/SOURCE").content_string.strip() == digest
    # Installed into the release's venv, with its dependencies.
    host.run_expect([0], "/srv/srcwheel/current/.venv/bin/python -c 'import hello, flask'")


# setup.py of a project: records which user ran it.
BUILD_PROBE = """\
import os, pwd
from setuptools import setup
with open("{probe}", "w") as out:
    out.write(pwd.getpwuid(os.getuid()).pw_name)
setup(name="probe", version="1.0", py_modules=["wsgi"])
"""


@pytest.mark.parametrize("installer", INSTALLERS_ONE_DISTRO_FOR_PIP)
def test_hash_checking_mode_installs_pinned_hashes_and_refuses_others(ansible_playbook, host, tmp_path, installer):
    # Gunicorn and another package, pinned with the hashes of their (pure
    # Python) wheels as the index serves them.
    pins = {"gunicorn": GUNICORN, "packaging": "25.0"}
    wheels = tmp_path / "wheels"
    subprocess.run(
        ["python", "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(wheels)]
        + [f"{name}=={version}" for name, version in pins.items()],
        check=True,
    )

    def source(tag, tamper=False):
        lines = []
        for name, version in pins.items():
            digest = hashlib.sha256(next(wheels.glob(f"{name}-{version}-*.whl")).read_bytes()).hexdigest()
            if tamper and name == "packaging":
                digest = "0" * 64
            lines.append(f"{name}=={version} --hash=sha256:{digest}")
        app = minimal_app(tmp_path / tag, "\n".join(lines) + "\n")
        # A project built by setup.py, third-party code at deploy time; new
        # content each run, so that it is built even on a host that has the last one.
        (Path(app["path"]) / "setup.py").write_text(BUILD_PROBE.format(probe=probe) + f"# {uuid.uuid4()}\n")
        return app

    name, probe = f"srchash-{installer}", f"/tmp/built-by-{installer}"
    host.run(f"rm -f {probe}")
    good = deploy(ansible_playbook, app_name=name, app_source=source("good"), app_pip_require_hashes=True,
                  app_installer=installer, **OTHER_APP)
    assert good.rc == 0, good.output[-3000:]
    live_id = host.file(f"/srv/{name}/current").linked_to
    host.run_expect([0], f"/srv/{name}/current/.venv/bin/gunicorn --version")
    # setup.py ran as the build user; nothing of the finished release is
    # left to that user or writable by others, and nothing it started runs on.
    assert host.file(probe).content_string == "wsgi-stack-build"
    assert host.check_output(f"find /srv/{name}/releases ! -user root -o ! -type l -perm /022") == ""
    assert host.run("pgrep -u wsgi-stack-build").rc == 1

    bad = deploy(ansible_playbook, app_name=name, app_source=source("bad", tamper=True), app_pip_require_hashes=True,
                 app_installer=installer, **OTHER_APP)
    assert bad.rc != 0
    assert HASH_MISMATCH[installer] in bad.output
    assert host.file(f"/srv/{name}/current").linked_to == live_id


@pytest.mark.parametrize("installer", INSTALLERS_ONE_DISTRO_FOR_PIP)
def test_wheelhouse_installs_without_any_package_index(ansible_playbook, host, variant, installer):
    # Any index access from the host now fails: pip's and uv's global
    # configs point at a closed port, and uv is not installed. The deploy
    # must still work from the controller's wheels, uv itself included.
    with package_index_closed(host):
        host.run_expect([0], "rm -rf /usr/local/lib/wsgi-stack/uv-*")
        run = deploy(ansible_playbook, app_name=f"srcwh-{installer}", app_installer=installer,
                     app_source={"type": "directory", "path": variant(f"wh-{installer}")}, app_wheelhouse=True, **OTHER_APP)
    assert run.rc == 0, run.output[-3000:]
    host.run_expect([0], f"/srv/srcwh-{installer}/current/.venv/bin/python -c 'import hello, flask, gunicorn'")
    assert host.file(f"/srv/srcwh-{installer}/current/.wheelhouse").is_directory


HTTPS_INDEX = """\
import functools, http.server, ssl
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory="/srv/pyindex")
server = http.server.ThreadingHTTPServer(("127.0.0.1", 8765), handler)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain("/srv/pyindex-tls/cert.pem", "/srv/pyindex-tls/key.pem")
server.socket = tls.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


@pytest.mark.parametrize("installer", INSTALLERS)
def test_index_extra_index_and_ca_bundle_options_are_used(ansible_playbook, host, tmp_path, installer):
    # Two package indexes served over HTTPS inside the container, on
    # loopback, with a self-signed certificate: the requirement only on the
    # main index, Gunicorn and its dependency only on the extra one. The
    # deploy works only if the index, the extra index and the CA bundle all
    # reach pip. The index has a host name (pip's truststore on Debian 13
    # fails on IP addresses with a custom CA).
    wheels = tmp_path / "wheels"
    # uv too, as a private mirror of PyPI would have it, for a host without it.
    subprocess.run(["python", "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(wheels),
                    "itsdangerous==2.2.0", f"gunicorn=={GUNICORN}", "packaging==25.0", f"uv=={UV_VERSION}"], check=True)
    layout = {"main/itsdangerous": "itsdangerous-", "extra/gunicorn": "gunicorn-", "extra/packaging": "packaging-",
              "extra/uv": "uv-"}
    container = host.backend.get_hostname()
    for path, prefix in layout.items():
        host.run_expect([0], f"mkdir -p /srv/pyindex/{path}")
        wheel = next(wheels.glob(f"{prefix}*.whl"))
        subprocess.run(["docker", "cp", str(wheel), f"{container}:/srv/pyindex/{path}/"], check=True)
    host.run_expect([0], "grep -q pyindex.test /etc/hosts || echo '127.0.0.1 pyindex.test' >> /etc/hosts")
    # A private CA and a server certificate it signed, as a company index
    # has (uv, unlike pip, refuses a CA certificate as the server's).
    host.run_expect([0], "mkdir -p /srv/pyindex-tls && cd /srv/pyindex-tls && "
                         "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout ca.key -out ca.pem "
                         "-subj /CN=pyindex-test-ca 2>/dev/null && "
                         "openssl req -newkey rsa:2048 -nodes -keyout key.pem -out req.pem "
                         "-subj /CN=pyindex.test -addext subjectAltName=DNS:pyindex.test 2>/dev/null && "
                         "openssl x509 -req -in req.pem -CA ca.pem -CAkey ca.key -days 1 -copy_extensions copy "
                         "-out cert.pem 2>/dev/null")
    host.run_expect([0], "cat > /srv/pyindex-tls/serve.py <<'EOF'\n" + HTTPS_INDEX + "EOF")
    host.run_expect([0], "nohup python3 /srv/pyindex-tls/serve.py >/dev/null 2>&1 &")
    host.run_expect([0], "curl -sf --cacert /srv/pyindex-tls/ca.pem --retry 10 --retry-connrefused --retry-delay 1 "
                         "https://pyindex.test:8765/main/itsdangerous/ >/dev/null")
    source = minimal_app(tmp_path / "src", "itsdangerous==2.2.0\n")
    # An empty cache: what uv finds there it takes without asking an index.
    host.run_expect([0], f"rm -rf /var/cache/wsgi-stack/packages/srcidx-{installer}")
    try:
        run = deploy(ansible_playbook, app_name=f"srcidx-{installer}", app_installer=installer, app_source=source,
                     app_pip_index_url="https://pyindex.test:8765/main/",
                     app_pip_extra_index_urls=["https://pyindex.test:8765/extra/"],
                     app_pip_ca_bundle="/srv/pyindex-tls/ca.pem", **OTHER_APP)
    finally:
        host.run("pkill -f /srv/pyindex-tls/serve.py")
    assert run.rc == 0, run.output[-3000:]
    host.run_expect([0], f"/srv/srcidx-{installer}/current/.venv/bin/python -c 'import itsdangerous, gunicorn'")


@pytest.mark.parametrize("installer", INSTALLERS_ONE_DISTRO_FOR_PIP)
def test_an_index_token_is_never_printed_nor_on_a_command_line(ansible_playbook, host, tmp_path, installer):
    """The installer gets the index from its environment, not its command
    line (which `ps` shows every user and a failed task prints): a failing
    install names no token."""
    token = "s3cr3t-index-token"
    # A package no cache holds, so that the index is asked.
    source = minimal_app(tmp_path / "src", "wsgi-stack-no-such-package==1.0\n")
    run = deploy(ansible_playbook, app_name=f"srctok-{installer}", app_installer=installer, app_source=source,
                 app_pip_index_url=f"https://deploy:{token}@127.0.0.1:9/simple/", **OTHER_APP)
    assert run.rc != 0
    # It failed where the index was asked: uv itself, or the dependencies.
    assert "install it with its dependencies and Gunicorn" in run.output or "Install uv into it" in run.output
    assert token not in run.output


@pytest.mark.one_distro
def test_a_git_source_is_one_release_for_every_host_of_a_run(ansible_playbook, host, variant):
    """The release's source is the commit, and the ref is fetched and packed
    once per run, whatever the number of hosts: both get the same release."""
    repo = variant("twins")
    sha = git_repo(repo)
    # The two hosts are one container under two names, so they take turns
    # (-f 1) rather than contend for its package and user databases.
    run = ansible_playbook("two-hosts.yml", "-f", "1", extra_vars={"twin_repo": f"file://{repo}"})
    assert run.rc == 0, run.output[-3000:]
    checkout = run.output.split("Check out the git ref]", 1)[1].split("TASK [", 1)[0]
    assert checkout.count("-> localhost]") == 1, checkout
    for root in ("/srv/a", "/srv/b"):
        assert host.file(f"{root}/twin/current/SOURCE").content_string.strip() == sha[:12]
    assert host.file("/srv/a/twin/current").linked_to.replace("/srv/a/", "/srv/b/") == host.file("/srv/b/twin/current").linked_to
    host.run_expect([0], "/srv/a/twin/current/.venv/bin/python -c 'import hello, gunicorn'")
