# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd units of an application's processes and timers, by name."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: process_units
short_description: The unit files and the units to start for an application's processes and timers
description:
  - From C(app_processes) and C(app_timers), one entry per unit file, namely
    C(<app>-<name>@.service) for a process, C(<app>-<name>.service) and
    C(<app>-<name>.timer) for a timer; each with the template that renders it
    and the process or timer it renders.
  - With I(enabled=true), the names to enable and start instead, namely each
    process's instances C(@1) to C(@count), and each timer.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
options:
  _input:
    description: The application's name.
    type: str
    required: true
  processes:
    description: C(app_processes).
    type: list
    elements: dict
    required: true
  timers:
    description: C(app_timers).
    type: list
    elements: dict
    required: true
  enabled:
    description: Return the units to start rather than the unit files.
    type: bool
    default: false
"""

EXAMPLES = r"""
units: "{{ app_name | wsgi.stack.process_units(app_processes, app_timers) }}"
# [{unit: blog-worker@.service, template: process.service.j2, job: {name: worker, ...}}, ...]
"""

RETURN = r"""
_value:
  description: The unit files (dicts of unit, template, job), or the unit names to start.
  type: list
"""


# The gunicorn role's templates: a process or a timer's job, and a timer.
SERVICE = "etc/systemd/system/process.service.j2"
TIMER = "etc/systemd/system/process.timer.j2"


def process_units(app, processes, timers, enabled=False):
    if enabled:
        return ([f"{app}-{p['name']}@{n}.service" for p in processes for n in range(1, int(p.get("count", 1)) + 1)]
                + [f"{app}-{t['name']}.timer" for t in timers])
    files = [{"unit": f"{app}-{p['name']}@.service", "template": SERVICE, "job": {**p, "kind": "process"}} for p in processes]
    for t in timers:
        job = {**t, "kind": "timer"}
        files += [{"unit": f"{app}-{t['name']}.service", "template": SERVICE, "job": job},
                  {"unit": f"{app}-{t['name']}.timer", "template": TIMER, "job": job}]
    return files


class FilterModule:
    def filters(self):
        return {"process_units": process_units}
