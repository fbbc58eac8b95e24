"""A compromised application: what hello's own code can do, from inside its
service's sandbox and as its plain user (a hook runs with that user's
rights, outside the sandbox), and what the next deploy then does as root.

Every write outside hello's shared/ must fail, another application's secrets
stay unreadable, and after a deploy through the links the app planted,
nothing outside hello's shared/ has changed owner or mode.
"""

import shutil
import uuid
from pathlib import Path

import pytest
from conftest import health

# After every other file of the scenario: the deploy below leaves hello on a
# release of its own (molecule/conftest.py).
RUN_LAST = True
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "hello"
SHARED = "/srv/hello/shared"
CACHE = "/var/cache/wsgi-stack/packages/hello/"
# Where a deploy or an application could change something that matters.
WATCHED = ["/srv", "/etc", "/opt", "/usr/local", "/var/cache/wsgi-stack", "/run/gunicorn"]
# The unit's lines that start and stop the service rather than confine it.
NOT_SANDBOX = {"Type", "NotifyAccess", "ExecStart", "ExecReload", "KillMode", "TimeoutStartSec",
               "TimeoutStopSec", "Restart", "SyslogIdentifier", "WorkingDirectory"}

# Each attempt prints what it achieved; a refused one prints nothing.
ATTACKS = r"""
try_write() { ( printf '#pwned\n' >>"$1" ) 2>/dev/null && echo "WROTE $1"; }
try_read() { cat -- "$1" >/dev/null 2>&1 && echo "READ $1"; }
try_write /srv/hello/current/pwned
try_write /srv/hello/current/hello/__init__.py
try_write "$(ls -d /srv/hello/current/.venv/lib/python3*/site-packages)/pwned.pth"
try_write /srv/hello/current/.venv/bin/gunicorn
try_write /srv/hello/releases/pwned
try_write /srv/hello/pwned
( ln -sfn /tmp /srv/hello/current ) 2>/dev/null && echo "WROTE /srv/hello/current (link)"
try_write /etc/hello/env
try_write /etc/hello/gunicorn.conf.py
try_write /etc/systemd/system/hello.service
try_write /etc/nginx/sites-available/hello.conf
try_write /srv/hi/shared/pwned
try_write /etc/hi/env
try_read /etc/hi/env
try_read /etc/ssl/wsgi-stack/hello/privkey.pem
try_write /var/cache/wsgi-stack/packages/hello/pwned
try_write /usr/local/lib/wsgi-stack/pwned
( ln /etc/hi/env "$SHARED/hardlink" ) 2>/dev/null && echo "WROTE $SHARED/hardlink (hard link)"
# The control: the one place the application may write.
try_write "$SHARED/probe" && rm -f "$SHARED/probe"
exit 0
"""


def sandbox_unit(host):
    """A oneshot unit that runs the attacks confined as hello.service confines
    Gunicorn: its user, environment and sandbox lines, taken from its unit."""
    unit = host.check_output("systemctl cat hello.service")
    lines = []
    for section in unit.split("[Service]")[1:]:
        for line in section.split("[", 1)[0].splitlines():
            line = line.strip()
            if line and not line.startswith("#") and line.split("=", 1)[0] not in NOT_SANDBOX:
                lines.append(line)
    assert "ProtectSystem=strict" in lines and "User=hello" in lines, unit
    return "\n".join(["[Service]", "Type=oneshot", "ExecStart=/bin/sh /run/hostile/attacks.sh",
                      "StandardOutput=file:/run/hostile/achieved", *lines, ""])


def attack(host, how):
    """What the attacks achieved, run in the service's sandbox or as the plain user."""
    host.check_output("install -d -m 0755 /run/hostile && rm -f /run/hostile/achieved")
    host.check_output(f"cat > /run/hostile/attacks.sh <<'SH'\n{ATTACKS.replace('$SHARED', SHARED)}\nSH")
    if how == "sandbox":
        host.check_output(f"cat > /run/systemd/system/hostile-probe.service <<'UNIT'\n{sandbox_unit(host)}UNIT")
        host.check_output("systemctl daemon-reload && systemctl start hostile-probe.service")
        out = host.check_output("cat /run/hostile/achieved")
        host.check_output("rm /run/systemd/system/hostile-probe.service && systemctl daemon-reload")
    else:
        out = host.check_output("runuser -u hello -- /bin/sh /run/hostile/attacks.sh")
    return [line for line in out.splitlines() if line]


def owners_and_modes(host):
    """path -> 'user:group mode' under WATCHED, hello's shared/ left out."""
    roots = " ".join(WATCHED)
    out = host.check_output(f"find {roots} -xdev -path {SHARED} -prune -o -printf '%p\\t%u:%g %m\\n'")
    return dict(line.split("\t", 1) for line in out.splitlines())


@pytest.fixture(scope="module")
def before(host):
    return owners_and_modes(host)


@pytest.mark.parametrize("how", ["sandbox", "user"])
def test_the_app_writes_nothing_outside_shared_and_reads_no_other_secret(host, before, how):
    achieved = attack(host, how)
    assert achieved == [f"WROTE {SHARED}/probe"], achieved


def test_a_deploy_through_the_links_the_app_planted_changes_nothing_outside_shared(host, before, ansible_playbook,
                                                                                   tmp_path):
    """The app links the shared paths of its next release to another app's
    directory, a root-owned directory and a root-only file; the next deploy
    builds and seals a release with those paths and runs it."""
    host.check_output("install -d -o root -g root -m 0755 /opt/victim")
    planted = {"uploads": "/etc/hi", "cache": "/opt/victim", "settings.cfg": "/etc/shadow"}
    for name, target in planted.items():
        host.check_output(f"runuser -u hello -- ln -sfn {target} {SHARED}/{name}")
    source = tmp_path / "hello"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__"))
    # New content, so the deploy builds and seals a new release.
    (source / "VARIANT").write_text(f"hostile {uuid.uuid4()}\n")
    old = Path(host.file("/srv/hello/current").linked_to).name
    try:
        run = ansible_playbook("converge.yml", extra_vars={
            "wsgi_only": "hello", "app_source": {"type": "directory", "path": str(source)},
            "app_shared_dirs": ["instance", "uploads", "cache"], "app_shared_files": ["settings.cfg"]})
        # The deploy itself may succeed: the links are the app's own business.
        assert run.rc == 0, run.output[-3000:]
        new = Path(host.file("/srv/hello/current").linked_to).name
        assert new != old
        assert health(host, "hello.test")["release"] == new

        after = owners_and_modes(host)
        changed = {p: (before[p], after[p]) for p in before.keys() & after.keys() if before[p] != after[p]}
        assert changed == {}
        # Whatever is new outside shared/ is root's (the new release and its
        # links), or the build user's in the app's package cache.
        new_paths = {p: o for p, o in after.items() if p not in before}
        assert new_paths and {p: o for p, o in new_paths.items() if not o.startswith("root:root ")
                              and not (p.startswith(CACHE) and o.startswith("wsgi-stack-build:"))} == {}
        assert host.check_output("readlink /srv/hello/current/uploads") == f"{SHARED}/uploads"
    finally:
        # The last tests of the scenario (RUN_LAST): nothing after them
        # needs hello back on the inventory's release.
        for name in planted:
            host.check_output(f"rm -f {SHARED}/{name}")
