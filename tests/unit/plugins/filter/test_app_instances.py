"""The planning filter: one host per application, and its refusals."""

import re
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.wsgi.stack.plugins.filter.app_instances import app_instances, unknown_keys


# What plan.yml passes: wsgi.stack.common's defaults, unrendered.
CONTRACT = yaml.safe_load((Path(__file__).parents[4] / "roles/common/defaults/main.yml").read_text())


def plan(*apps, only=None, **server):
    server = {"wsgi_apps": list(apps), "ansible_user": "deploy", **server}
    return app_instances(["web1"], {"web1": server}, only, contract=CONTRACT)


def test_each_application_becomes_a_host_with_the_servers_variables():
    hosts = plan({"app_name": "blog", "app_domains": ["blog.test"]}, {"app_name": "shop"})
    assert [h["name"] for h in hosts] == ["web1/blog", "web1/shop"]
    assert hosts[0]["ansible_user"] == "deploy" and hosts[0]["wsgi_server"] == "web1"
    assert hosts[0]["app_domains"] == ["blog.test"]


def test_only_keeps_the_named_applications():
    assert [h["name"] for h in plan({"app_name": "blog"}, {"app_name": "shop"}, only=["shop"])] == ["web1/shop"]


@pytest.mark.parametrize("apps, message", [
    ([{"app_name": "blog", "app_domains": ["blog.test"]}, {"app_name": "shop", "app_domains": ["Blog.test."]}],
     "blog and shop both claim the domain blog.test"),
    ([{"app_name": "blog"}, {"app_name": "shop", "gunicorn_socket": "/run/gunicorn/blog.sock"}],
     "blog and shop both claim the gunicorn_socket /run/gunicorn/blog.sock"),
    ([{"app_name": "foo-bar"}, {"app_name": "foo_bar"}], "foo-bar and foo_bar both claim the nginx upstream foo_bar"),
    ([{"app_name": "blog"}, {"app_name": "blog"}], "names blog more than once"),
    ([{"app_name": "zz\n"}], "wsgi_apps[0] of web1 needs app_name"),
    ([{"app_name": "Blog"}], "wsgi_apps[0] of web1 needs app_name"),
])
def test_conflicting_or_malformed_applications_are_refused(apps, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        plan(*apps)


def test_a_socket_set_for_the_whole_server_is_a_clash():
    with pytest.raises(AnsibleFilterError, match="blog and shop both claim the gunicorn_socket /run/app.sock"):
        plan({"app_name": "blog"}, {"app_name": "shop"}, gunicorn_socket="/run/app.sock")


def test_the_default_socket_comes_from_the_contract():
    contract = {**CONTRACT, "gunicorn_socket": "/run/web/{{ app_name[:2] }}.sock"}
    apps = [{"app_name": "shop"}, {"app_name": "shoe"}]
    with pytest.raises(AnsibleFilterError, match="shop and shoe both claim the gunicorn_socket /run/web/sh.sock"):
        app_instances(["web1"], {"web1": {"wsgi_apps": apps}}, contract=contract)


def test_a_default_that_needs_more_than_the_variables_is_named():
    contract = {**CONTRACT, "gunicorn_socket": "{{ app_base_dir }}/app.sock"}
    with pytest.raises(AnsibleFilterError, match="gunicorn_socket of blog: cannot render wsgi.stack.common's default"):
        app_instances(["web1"], {"web1": {"wsgi_apps": [{"app_name": "blog"}]}}, contract=contract)


def test_the_contract_is_required():
    with pytest.raises(AnsibleFilterError, match="needs contract"):
        app_instances(["web1"], {"web1": {"wsgi_apps": [{"app_name": "blog"}]}})


def test_an_unknown_selected_application_is_refused():
    with pytest.raises(AnsibleFilterError, match="wsgi_only names nope"):
        plan({"app_name": "blog"}, only=["nope"])


def test_a_misspelt_key_is_named_with_the_closest_known_one():
    known = ["app_name", "app_source", "gunicorn_threads", "gunicorn_workers", "app_health_path"]
    app = {"app_name": "hello", "gunicorn_treads": 8, "app_sorce": {}, "gunicorn_threads": 4, "other_tool_x": 1}
    messages = unknown_keys(app, known)
    assert messages == [
        "wsgi_apps entry hello sets app_sorce, which no wsgi.stack role reads (did you mean app_source?)",
        "wsgi_apps entry hello sets gunicorn_treads, which no wsgi.stack role reads (did you mean gunicorn_threads?)",
    ]
    # Keys without the collection's prefixes belong to someone else.
    assert unknown_keys({"app_name": "hello", "my_var": 1}, known) == []


@pytest.mark.parametrize("path", ["health", "/health check", "/health\n", "https://x/health"])
def test_a_health_path_that_is_not_a_path_is_refused_before_any_deploy(path):
    with pytest.raises(AnsibleFilterError, match="app_health_path of hello on web1 must be a URL path"):
        plan({"app_name": "hello", "app_health_path": path})
    assert plan({"app_name": "hello", "app_health_path": "/-/ready"})[0]["app_health_path"] == "/-/ready"


def test_the_plan_takes_every_name_the_roles_take():
    assert [h["name"] for h in plan({"app_name": "a" * 32})] == ["web1/" + "a" * 32]
    with pytest.raises(AnsibleFilterError, match=re.escape("wsgi_apps[0] of web1 needs app_name")):
        plan({"app_name": "a" * 33})


def live_server(apps, records):
    """A server's hostvars with the local facts deploy.yml records."""
    return {"web1": {"wsgi_apps": apps, "ansible_local": {f"wsgi_stack_{r['app_name']}": r for r in records}}}


GONE = {"app_name": "gone", "app_domains": ["gone.test"], "gunicorn_socket": "/run/gunicorn/gone.sock"}


@pytest.mark.parametrize("claim, message", [
    ({"app_domains": ["Gone.test."]}, "gone (live on web1, not in its wsgi_apps) and thief both claim the domain gone.test"),
    ({"gunicorn_socket": "/run/gunicorn/gone.sock"},
     "gone (live on web1, not in its wsgi_apps) and thief both claim the gunicorn_socket /run/gunicorn/gone.sock"),
])
def test_an_application_claiming_what_a_live_one_holds_is_refused(claim, message):
    thief = {"app_name": "thief", "app_domains": ["thief.test"], **claim}
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        app_instances(["web1"], live_server([thief], [GONE]), contract=CONTRACT, live=True)


def test_a_live_application_still_listed_is_its_own_entry_and_unused_records_claim_nothing():
    # hello moved its domain since its record: the inventory is the truth.
    hello = {"app_name": "hello", "app_domains": ["hello.example"]}
    old = {"app_name": "hello", "app_domains": ["gone.test"], "gunicorn_socket": "/run/gunicorn/hello.sock"}
    plans = app_instances(["web1"], live_server([hello, {"app_name": "other", "app_domains": ["gone.test"]}], [old]),
                          contract=CONTRACT, live=True)
    assert [plan["name"] for plan in plans] == ["web1/hello", "web1/other"]


def test_without_live_the_records_are_not_read():
    thief = {"app_name": "thief", "app_domains": ["gone.test"]}
    assert app_instances(["web1"], live_server([thief], [GONE]), contract=CONTRACT)


def test_an_application_removed_with_its_data_kept_claims_nothing():
    thief = {"app_name": "thief", "app_domains": ["gone.test"]}
    assert app_instances(["web1"], live_server([thief], [{**GONE, "removed": True}]), contract=CONTRACT, live=True)
