"""Bad input across the applications of one server: refused by the plan,
on the controller, before any host is touched, with the variable named and
both applications still serving what they served. Controller-side: on
Debian 12 only."""

import copy
from pathlib import Path

import pytest
import yaml
from conftest import health

SCENARIO = Path(__file__).resolve().parent.parent
APPS = yaml.safe_load((SCENARIO / "inventory/group_vars/all/apps.yml").read_text())["wsgi_apps"]
DOMAINS = {"hello": "hello.test", "hi": "hi.test"}

pytestmark = pytest.mark.one_distro


def apps(**changes):
    """The inventory's applications, with changes per app name; a name that is
    not there adds an application (a copy of hi under that name)."""
    result = copy.deepcopy(APPS)
    for name, change in changes.items():
        entry = next((app for app in result if app["app_name"] == name), None)
        if entry is None:
            entry = {**copy.deepcopy(APPS[1]), "app_name": name, "app_domains": [f"{name}.test"]}
            result.append(entry)
        entry.update(change)
    return result


def serving(host):
    """Each application's release as it answers through nginx."""
    return {app: health(host, name)["release"] for app, name in DOMAINS.items()}


@pytest.mark.parametrize("extra, message", [
    ({"wsgi_apps": apps(hi={"app_domains": ["hi.test", "Hello.test."]})}, "hello and hi both claim the domain hello.test"),
    ({"wsgi_apps": apps(hi={"gunicorn_socket": "/run/gunicorn/hello.sock"})},
     "hello and hi both claim the gunicorn_socket /run/gunicorn/hello.sock"),
    ({"wsgi_apps": apps(**{"foo-bar": {}, "foo_bar": {}})}, "foo-bar and foo_bar both claim the nginx upstream foo_bar"),
    ({"wsgi_apps": APPS + [APPS[0]]}, "names hello more than once"),
    ({"wsgi_apps": apps(hi={"app_name": "hi\n"})}, "needs app_name"),
    ({"wsgi_only": "hallo"}, "wsgi_only names hallo"),
    ({"app_health_path": "health"}, "app_health_path of hello on"),
], ids=["same-domain", "same-socket", "same-upstream", "same-name", "name-newline", "unknown-only", "health-path"])
def test_the_plan_refuses_before_any_host_changes(host, ansible_playbook, extra, message):
    before = serving(host)
    run = ansible_playbook("converge.yml", extra_vars=extra)
    assert run.rc != 0
    assert message in " ".join(run.output.split()), run.output[-2000:]
    # Nothing ran on any application's host, so nothing changed.
    assert run.changed() == 0
    assert not [h for h in run.recap() if "/" in h], run.recap()
    assert serving(host) == before


def test_a_misspelt_setting_is_named_with_the_one_meant(host, ansible_playbook):
    """A typo is not an error (other tools may read their own keys in
    wsgi_apps), but every playbook that plans says which name was meant."""
    run = ansible_playbook("../../playbooks/status.yml", extra_vars={
        "wsgi_apps": apps(hello={"gunicorn_treads": 8, "app_sorce": {}})})
    assert run.rc == 0, run.output[-2000:]
    text = " ".join(run.output.split())
    for typo, meant in (("gunicorn_treads", "gunicorn_threads"), ("app_sorce", "app_source")):
        assert f"wsgi_apps entry hello sets {typo}, which no wsgi.stack role reads (did you mean {meant}?)" in text
    assert run.changed() == 0
