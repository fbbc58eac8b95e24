"""The collection as another team uses it: built into a tarball, installed into
a collections path of its own, and its roles included by their fully qualified
names from a playbook that lives outside this repository.

Runs after test_default.py on the same server, as a third app; on Debian 12
only: building and installing the collection happens on the controller, and
the roles it runs are the converge's, tested on both distros.
"""

import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import health

pytestmark = pytest.mark.one_distro

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])

PLAYBOOK = """\
- name: Our own playbook, with the roles of wsgi.stack
  hosts: all
  become: true
  vars:
    app_name: outside
    app_domains: [outside.test]
    app_source: {{type: directory, path: "{source}"}}
    app_env:
      SECRET_KEY: "{secret}"
    gunicorn_entry_point: hello:create_app()
  tasks:
    - name: Deploy the code
      ansible.builtin.include_role:
        name: wsgi.stack.app
    - name: Run it under Gunicorn
      ansible.builtin.include_role:
        name: wsgi.stack.gunicorn
    - name: Give it a certificate
      ansible.builtin.include_role:
        name: wsgi.stack.tls
    - name: Put nginx in front
      ansible.builtin.include_role:
        name: wsgi.stack.nginx
"""


def run(*cmd, env=None, cwd=None):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=False, timeout=900)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The environment of a team that installed the built tarball, and nothing of this checkout."""
    where = tmp_path_factory.mktemp("installed")
    built = run("ansible-galaxy", "collection", "build", str(ROOT), "--output-path", str(where))
    assert built.returncode == 0, built.stderr
    (tarball,) = where.glob("wsgi-stack-*.tar.gz")
    collections = where / "collections"
    # Not the tests' path: it holds this checkout, and install would find it there.
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1"}
    # The dependencies come with the `ansible` package, as the README says.
    done = run("ansible-galaxy", "collection", "install", "--no-deps", "-p", str(collections), str(tarball), env=env)
    assert done.returncode == 0, done.stderr
    listed = run("ansible-galaxy", "collection", "list", "wsgi.stack", "--format", "json", env=env)
    assert list(yaml.safe_load(listed.stdout)) == [str(collections / "ansible_collections")], listed.stdout
    return env


def test_an_outside_playbook_uses_the_roles_of_the_installed_collection(host, installed, tmp_path):
    env = installed
    secret = secrets.token_hex(16)
    playbook = tmp_path / "team" / "site.yml"
    playbook.parent.mkdir()
    playbook.write_text(PLAYBOOK.format(source=ROOT / "examples" / "hello", secret=secret))
    play = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(playbook)]

    first = run(*play, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert secret not in first.stdout + first.stderr
    release = Path(host.file("/srv/outside/current").linked_to).name
    assert health(host, "outside.test") == {"status": "ok", "release": release}

    again = run(*play, "--diff", env=env)
    assert again.returncode == 0, again.stdout
    assert re.search(r" changed=0\s", again.stdout), again.stdout
    assert secret not in again.stdout + again.stderr


def test_the_installed_collection_runs_its_deploy_playbook_by_name(installed, tmp_path):
    deploy = run("ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "wsgi.stack.deploy",
                 "--check", env=installed, cwd=tmp_path)

    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    changed = {app: int(n) for app, n in
               re.findall(r"^\S+/(\w+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", deploy.stdout, re.M)}
    assert changed == {"hello": 0, "hi": 0}, deploy.stdout
