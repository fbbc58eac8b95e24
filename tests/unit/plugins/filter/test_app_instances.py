"""The planning filter: one host per application, and its refusals."""

import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.wsgi.stack.plugins.filter.app_instances import app_instances


def plan(*apps, only=None):
    return app_instances(["web1"], {"web1": {"wsgi_apps": list(apps), "ansible_user": "deploy"}}, only)


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


def test_an_unknown_selected_application_is_refused():
    with pytest.raises(AnsibleFilterError, match="wsgi_only names nope"):
        plan({"app_name": "blog"}, only=["nope"])
