# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sizes of a rolling deploy's batches, counted in applications' hosts."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
---
name: rolling_batches
short_description: Batches of servers as a play's serial list of application hosts
description:
  - A rolling deploy switches whole servers, a batch at a time, and each
    server has one inventory host per application (C(<server>/<app_name>)).
    Given those hosts, this returns the list for the play's C(serial), with
    C(order) set to C(sorted), so that each batch holds every application of its
    servers.
  - I(batch) counts servers as C(serial) counts hosts, namely a number, a
    percentage of the servers (C("30%"), at least one), or a list of either,
    whose last entry repeats.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
positional: hostvars, batch
options:
  _input:
    description: The applications' hosts of the rolling deploy.
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) magic variable (each host's C(wsgi_server)).
    type: raw
    required: true
  batch:
    description: Servers per batch (C(wsgi_rolling_batch)).
    type: raw
    default: 1
"""

EXAMPLES = r"""
- name: Roll out
  hosts: wsgi_rolling_instances
  order: sorted
  serial: "{{ groups['wsgi_rolling_instances'] | wsgi.stack.rolling_batches(hostvars, 1) }}"
"""

RETURN = r"""
_value:
  description: Hosts per batch, in the order of the sorted hosts.
  type: list
  elements: int
"""

PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")


def _servers_per_batch(entry, total):
    if isinstance(entry, bool):
        raise AnsibleFilterError(f"wsgi_rolling_batch: {entry!r} is not a number of servers or a percentage")
    if isinstance(entry, str):
        match = PERCENT.fullmatch(entry)
        if match:
            size = max(1, int(total * float(match[1]) / 100))
        elif entry.strip().isdigit():
            size = int(entry)
        else:
            raise AnsibleFilterError(f"wsgi_rolling_batch: {entry!r} is not a number of servers or a percentage")
    elif isinstance(entry, int):
        size = entry
    else:
        raise AnsibleFilterError(f"wsgi_rolling_batch: {entry!r} is not a number of servers or a percentage")
    if size < 1:
        raise AnsibleFilterError(f"wsgi_rolling_batch: {entry!r} is fewer than one server per batch")
    return size


def rolling_batches(hosts, hostvars, batch=1):
    hosts = sorted(hosts)
    servers, apps_of = [], {}
    for host in hosts:
        server = hostvars[host].get("wsgi_server", host)
        if server not in apps_of:
            servers.append(server)
            apps_of[server] = 0
        apps_of[server] += 1
    entries = list(batch) if isinstance(batch, (list, tuple)) else [batch]
    if not entries:
        raise AnsibleFilterError("wsgi_rolling_batch: an empty list")
    sizes = [_servers_per_batch(entry, len(servers)) for entry in entries]
    counts, start, step = [], 0, 0
    while start < len(servers):
        size = sizes[min(step, len(sizes) - 1)]
        counts.append(sum(apps_of[server] for server in servers[start:start + size]))
        start, step = start + size, step + 1
    return counts or [1]


class FilterModule:
    def filters(self):
        return {"rolling_batches": rolling_batches}
