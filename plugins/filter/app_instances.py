# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn each server's list of applications into one inventory host per application."""

from __future__ import annotations

import difflib
import re

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ansible_collections.wsgi.stack.plugins.module_utils.names import APP_NAME

DOCUMENTATION = r"""
---
name: app_instances
short_description: One inventory host per application of each server
description:
  - Reads C(wsgi_apps), the list of applications of each server, and returns
    what M(ansible.builtin.add_host) needs to make each application a host of
    its own, named C(<server>/<app_name>), so that the roles run once per
    application with that application's variables and fall back to their
    defaults for the rest.
  - Each new host carries the server's variables (its connection settings,
    group and host variables), then the application's keys on top, and
    C(wsgi_server), the server's name.
  - Servers that do not define C(wsgi_apps) are left out.
  - The list is ordered by position, the first application of every server
    first, so that a play with C(serial) set to the number of servers deploys
    the servers side by side and the applications of one server one by one.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
positional: servers, hostvars
options:
  _input:
    description: Names of the servers (for example C(ansible_play_hosts)).
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: raw
    required: true
  only:
    description: Keep only these application names (an empty list keeps all).
    type: list
    elements: str
    default: []
  known:
    description:
      - Every variable the roles and playbooks read. A key of an application
        with one of the collection's prefixes (C(app_), C(gunicorn_),
        C(nginx_), C(tls_), C(python_), C(wsgi_)) that is not in this list is
        a typo that would be ignored silently, so it is reported as a warning,
        with the closest known name. An empty list checks nothing.
    type: list
    elements: str
    default: []
  contract:
    description:
      - The defaults of M(wsgi.stack.common) as its C(defaults/main.yml)
        holds them, unrendered. The clash check takes the Gunicorn socket of
        an application that sets none from there, rendered with the
        application's variables, so that it compares the sockets the roles
        will use.
    type: dict
    required: true
  live:
    description:
      - Also refuse an application that claims the domain, socket or nginx
        upstream of an application live on its server and no longer in the
        server's C(wsgi_apps), naming both. What is live is what
        C(playbooks/deploy.yml) recorded as the server's local facts
        C(wsgi_stack_<app_name>), which the server's hostvars must hold
        (C(ansible.builtin.setup) with C(gather_subset=local)).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Make each application a host
  ansible.builtin.add_host: "{{ item }}"
  loop: "{{ ansible_play_hosts | wsgi.stack.app_instances(hostvars, contract=__contract) }}"
  no_log: true
  vars:
    __contract: "{{ lookup('ansible.builtin.file', 'roles/common/defaults/main.yml') | ansible.builtin.from_yaml }}"
"""

RETURN = r"""
_value:
  description: Arguments for M(ansible.builtin.add_host), one per application.
  type: list
  elements: dict
"""

# Variables Ansible gives every host; the new host gets its own.
MAGIC = {
    "ansible_check_mode", "ansible_config_file", "ansible_diff_mode", "ansible_facts",
    "ansible_forks", "ansible_inventory_sources", "ansible_playbook_python", "ansible_run_tags",
    "ansible_skip_tags", "ansible_verbosity", "ansible_version", "group_names", "groups",
    "inventory_dir", "inventory_file", "inventory_hostname", "inventory_hostname_short",
    "omit", "playbook_dir", "wsgi_apps",
}
# The smoke test's path after each deploy, checked before the first one.
HEALTH_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")
PREFIXES = ("app_", "gunicorn_", "nginx_", "tls_", "python_", "wsgi_")
# deploy.yml records each application it deploys as the server's local fact
# wsgi_stack_<app_name> (/etc/ansible/facts.d).
RECORD_PREFIX = "wsgi_stack_"
# Renders a default of wsgi.stack.common with nothing but the variables given.
SANDBOX = ImmutableSandboxedEnvironment(undefined=StrictUndefined)


def unknown_keys(app, known):
    """Messages for the keys of one application that no role reads."""
    messages = []
    for key in sorted(k for k in app if k.startswith(PREFIXES) and k not in known):
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        messages.append(f"wsgi_apps entry {app['app_name']} sets {key}, which no wsgi.stack role reads{hint}")
    return messages


def live_records(server_vars, apps):
    """What deploy.yml recorded on the server (its local facts
    wsgi_stack_<app>) of the applications that this inventory no longer
    lists there; one that remove.yml removed, keeping its data, claims
    nothing."""
    listed = {app["app_name"] for app in apps}
    local = server_vars.get("ansible_local") or {}
    return [record for key, record in sorted(local.items())
            if key.startswith(RECORD_PREFIX) and isinstance(record, dict)
            and record.get("app_name") and record["app_name"] not in listed and not record.get("removed")]


def app_instances(servers, hostvars, only=None, known=None, contract=None, live=False):
    if not isinstance(contract, dict) or "gunicorn_socket" not in contract:
        raise AnsibleFilterError("app_instances needs contract: the defaults of wsgi.stack.common")
    only = list(only or [])
    known = set(known or [])
    plans, seen = [], set()
    for server in servers:
        server_vars = hostvars[server]
        if "wsgi_apps" not in server_vars:
            # A host configured for the roles alone (app_name etc. on the host).
            continue
        apps = server_vars["wsgi_apps"]
        if not isinstance(apps, (list, tuple)) or not apps:
            raise AnsibleFilterError(f"wsgi_apps of {server} must be a non-empty list of applications")
        names = []
        for position, app in enumerate(apps):
            if not isinstance(app, dict) or not APP_NAME.fullmatch(str(app.get("app_name", ""))):
                raise AnsibleFilterError(
                    f"wsgi_apps[{position}] of {server} needs app_name: lowercase letters, digits, '-' or '_'")
            names.append(app["app_name"])
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise AnsibleFilterError(f"wsgi_apps of {server} names {', '.join(duplicates)} more than once")
        if known:
            for app in apps:
                for message in unknown_keys(app, sorted(known)):
                    Display().warning(message)
        seen.update(names)
        base = {key: server_vars[key] for key in server_vars if key not in MAGIC}
        base.setdefault("ansible_host", server)
        base["wsgi_server"] = server
        others = live_records(server_vars, apps) if live else []
        _refuse_shared_claims(server, apps, lambda app: _setting(contract, "gunicorn_socket", {**base, **app}), others)
        for app in apps:
            path = _setting(contract, "app_health_path", {**base, **app})
            if not HEALTH_PATH.fullmatch(path):
                raise AnsibleFilterError(
                    f"app_health_path of {app['app_name']} on {server} must be a URL path starting with '/'"
                    f" (no spaces, '?' or '#' allowed), got {path!r}")
        chosen = [app for app in apps if not only or app["app_name"] in only]
        plans.append([{**base, **app, "name": f"{server}/{app['app_name']}", "groups": ["wsgi_app_instances"]}
                      for app in chosen])
    unknown = sorted(set(only) - seen)
    # With no wsgi_apps at all, the inventory is for the roles alone: nothing to check.
    if plans and unknown:
        raise AnsibleFilterError(f"wsgi_only names {', '.join(unknown)}, which no server's wsgi_apps holds")
    depth = max((len(plan) for plan in plans), default=0)
    return [plan[i] for i in range(depth) for plan in plans if i < len(plan)]


def _setting(contract, key, variables):
    """The value of key for one application (variables: the server's with the
    application's on top), else the contract's default rendered with them in
    a sandbox that sees nothing but those variables."""
    if key in variables:
        return str(variables[key])
    try:
        return SANDBOX.from_string(str(contract[key])).render(variables)
    except TemplateError as err:
        raise AnsibleFilterError(f"{key} of {variables['app_name']}: cannot render wsgi.stack.common's default: {err}") from err


def _refuse_shared_claims(server, apps, socket_of, live=()):
    """Two applications of one server must not claim one name, socket or
    nginx upstream: nginx would only warn and give it to the first site file.
    The applications live on the server (live: their records) claim first."""
    claims = {}
    recorded = {id(record) for record in live}
    for app in [*live, *apps]:
        name, is_live = app["app_name"], id(app) in recorded
        owner = f"{name} (live on {server}, not in its wsgi_apps)" if is_live else name
        wanted = [("domain", str(domain).lower().rstrip(".")) for domain in app.get("app_domains") or []]
        socket = app.get("gunicorn_socket") if is_live else socket_of(app)
        if socket:
            wanted.append(("gunicorn_socket", socket))
        # The nginx role names the upstream after app_name with '-' as '_'.
        wanted.append(("nginx upstream", name.replace("-", "_")))
        for kind, value in wanted:
            other = claims.setdefault((kind, value), owner)
            if other != owner:
                raise AnsibleFilterError(
                    f"wsgi_apps of {server}: {other} and {name} both claim the {kind} {value}")


class FilterModule:
    def filters(self):
        return {"app_instances": app_instances}
