# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One inventory host per application of each balancer, with its backends."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.wsgi.stack.plugins.filter.app_instances import MAGIC

DOCUMENTATION = r"""
---
name: balancer_instances
short_description: One inventory host per application of each balancer
description:
  - From what M(wsgi.stack.app_instances) (filter) returns for the app
    servers (every application, also in a run that deploys some), what
    M(ansible.builtin.add_host) needs to make
    each application a host of each balancer too, named
    C(<balancer>/<app_name>), in the group C(wsgi_balancer_instances), with the
    balancer's variables, then the application's name, names, health path
    and C(tls_*) settings (from its first server), C(wsgi_balancer), and
    C(balancer_app), the application's entry of the balancer role's
    C(balancer_apps).
  - Refuses, naming the host and the variable, a balancer or an app server
    without C(wsgi_private_address), an application whose servers give it
    different C(app_domains), and C(tls_mode) acme, which needs HTTP-01
    answered on the app server that the balancer fronts.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
positional: instances, hostvars
options:
  _input:
    description: The balancers' names (the group C(wsgi_balancers)).
    type: list
    elements: str
    required: true
  instances:
    description: What M(wsgi.stack.app_instances) (filter) returns for the app servers.
    type: list
    elements: dict
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Make each application a host of each balancer
  ansible.builtin.add_host: "{{ item }}"
  loop: "{{ groups['wsgi_balancers'] | wsgi.stack.balancer_instances(__every_app, hostvars) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: Arguments for M(ansible.builtin.add_host), one per application of each balancer.
  type: list
  elements: dict
"""

# What the balancer needs of an application, besides its tls_* settings.
APP_KEYS = ("app_name", "app_domains", "app_health_path")


def _address(hostvars, host, role):
    address = str(hostvars[host].get("wsgi_private_address") or "")
    if not address:
        raise AnsibleFilterError(
            f"{host} is in {role} but has no wsgi_private_address: the address the balancers"
            " and app servers reach each other at (README, 'Many servers behind a balancer')")
    return address


def balancer_instances(balancers, instances, hostvars):
    apps = {}
    for app in instances:
        name, server = app["app_name"], app["wsgi_server"]
        if str(app.get("tls_mode", "selfsigned")) == "acme":
            raise AnsibleFilterError(
                f"{name} on {server}: tls_mode acme is not supported behind wsgi_balancers (the balancer"
                " answers port 80, not the app server); use provided or selfsigned")
        domains = [str(domain).lower() for domain in app.get("app_domains") or []]
        entry = apps.setdefault(name, {"first": app, "domains": domains, "servers": []})
        if domains != entry["domains"]:
            raise AnsibleFilterError(
                f"{name} has app_domains {entry['domains']} on {entry['first']['wsgi_server']}"
                f" but {domains} on {server}: a balancer sends one set of names to all its servers")
        entry["servers"].append({"name": server, "address": _address(hostvars, server, "wsgi_servers")})
    plans = []
    for balancer in balancers:
        _address(hostvars, balancer, "wsgi_balancers")
        base = {key: value for key, value in hostvars[balancer].items() if key not in MAGIC}
        base.setdefault("ansible_host", balancer)
        for name, entry in apps.items():
            app = entry["first"]
            keys = {key: app[key] for key in app if key in APP_KEYS or key.startswith("tls_")}
            backend = {"name": name, "domains": entry["domains"],
                       "health_path": str(app.get("app_health_path", "/health")),
                       "servers": sorted(entry["servers"], key=lambda server: server["name"])}
            plans.append({**base, **keys, "name": f"{balancer}/{name}", "groups": ["wsgi_balancer_instances"],
                          "wsgi_balancer": balancer, "balancer_app": backend})
    return plans


class FilterModule:
    def filters(self):
        return {"balancer_instances": balancer_instances}
