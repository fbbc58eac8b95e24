"""The filters that plan deploys behind balancers: the rolling batches and
each balancer's host per application."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.wsgi.stack.plugins.filter.balancer_instances import balancer_instances
from ansible_collections.wsgi.stack.plugins.filter.rolling_batches import rolling_batches


def instances(layout):
    """{server: [apps]} as the applications' hosts and their hostvars."""
    hostvars = {f"{server}/{app}": {"wsgi_server": server, "app_name": app}
                for server, apps in layout.items() for app in apps}
    return list(hostvars), hostvars


@pytest.mark.parametrize("batch, sizes", [
    (1, [1, 1, 1]),
    ("2", [2, 1]),
    ("34%", [1, 1, 1]),
    ("50%", [1, 1, 1]),
    ("67%", [2, 1]),
    ("100%", [3]),
    ([1, "100%"], [1, 2]),
    (10, [3]),
])
def test_batches_count_servers_as_serial_counts_hosts(batch, sizes):
    hosts, hostvars = instances({"web1": ["blog"], "web2": ["blog"], "web3": ["blog"]})
    assert rolling_batches(hosts, hostvars, batch) == sizes


def test_a_batch_holds_every_application_of_its_servers_in_sorted_order():
    # Unsorted input, servers with two and one applications.
    hosts, hostvars = instances({"web2": ["shop", "blog"], "web1": ["blog", "shop"], "web10": ["blog"]})
    assert rolling_batches(list(reversed(hosts)), hostvars, 1) == [2, 1, 2]
    assert rolling_batches(hosts, hostvars, 2) == [3, 2]


@pytest.mark.parametrize("batch", [0, "0", -1, "x", "%", True, [], ["1", "none"], 1.5])
def test_a_batch_that_is_no_number_of_servers_is_refused_by_name(batch):
    hosts, hostvars = instances({"web1": ["blog"]})
    with pytest.raises(AnsibleFilterError, match="wsgi_rolling_batch"):
        rolling_batches(hosts, hostvars, batch)


def app(server, **keys):
    return {"wsgi_server": server, "app_name": "blog", "app_domains": ["Blog.test"], "ansible_user": "deploy",
            "gunicorn_workers": 3, **keys}


HOSTVARS = {"lb1": {"wsgi_private_address": "10.0.0.10", "ansible_host": "203.0.113.5", "groups": {}},
            "lb2": {"wsgi_private_address": "10.0.0.20"},
            "web1": {"wsgi_private_address": "10.0.0.11"},
            "web2": {"wsgi_private_address": "10.0.0.12"}}


def test_each_balancer_gets_a_host_per_application_with_its_backend():
    hosts = balancer_instances(["lb1", "lb2"], [app("web2", tls_mode="provided"), app("web1", tls_mode="provided")],
                               HOSTVARS)
    assert [h["name"] for h in hosts] == ["lb1/blog", "lb2/blog"]
    first = hosts[0]
    assert first["ansible_host"] == "203.0.113.5" and "groups" in first and first["groups"] == ["wsgi_balancer_instances"]
    assert first["wsgi_balancer"] == "lb1" and first["tls_mode"] == "provided" and first["app_name"] == "blog"
    # The application's keys the balancer needs, not the app servers' own.
    assert "gunicorn_workers" not in first and "ansible_user" not in first
    assert first["balancer_app"] == {
        "name": "blog", "domains": ["blog.test"], "health_path": "/health",
        "servers": [{"name": "web1", "address": "10.0.0.11"}, {"name": "web2", "address": "10.0.0.12"}]}


@pytest.mark.parametrize("apps, balancers, message", [
    ([app("web1"), app("web3")], ["lb1"], "web3 is in wsgi_servers but has no wsgi_private_address"),
    ([app("web1")], ["lb3"], "lb3 is in wsgi_balancers but has no wsgi_private_address"),
    ([app("web1"), app("web2", app_domains=["other.test"])], ["lb1"],
     r"blog has app_domains \['blog.test'\] on web1 but \['other.test'\] on web2"),
    ([app("web1", tls_mode="acme")], ["lb1"], "blog on web1: tls_mode acme is not supported behind wsgi_balancers"),
])
def test_what_a_balancer_cannot_front_is_refused_naming_the_host_and_variable(apps, balancers, message):
    hostvars = {**HOSTVARS, "web3": {}, "lb3": {}}
    with pytest.raises(AnsibleFilterError, match=message):
        balancer_instances(balancers, apps, hostvars)
