#!/usr/bin/python
# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart or reload a service unless it already runs what changed."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: service_refresh
short_description: Restart or reload a systemd service once, however many roles ask
description:
  - Restarts I(name) unless its main process started after every one of
    I(changed_paths) last changed; reloads it unless it started, or this
    module last reloaded it, after that. A service a play has just started
    or restarted already reads what changed, and one it has just reloaded
    what a reload reads, so a second role that asks for the same refresh in
    the same play finds nothing to do. A reload never stands in for a
    restart, since a reload does not read again what only a restart reads
    (a new release, the environment).
  - A unit that is not installed is left alone; so is, for a reload, a
    service that is not running (a restart starts it).
  - With I(test), that command must succeed before anything is refreshed
    (C(nginx -t)); when it fails, the module fails with what it printed and
    the service keeps running what it runs.
  - Handlers use it, so that one "test, then reload" runs per daemon.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
options:
  name:
    description: The systemd unit.
    type: str
    required: true
  state:
    description: Restart the service, or reload it (its ExecReload).
    type: str
    choices: [restarted, reloaded]
    required: true
  changed_paths:
    description:
      - The files, links and directories the service reads, compared by
        modification time, links not followed. Paths that do not exist are
        ignored.
    type: list
    elements: path
    required: true
  test:
    description: A command (argv) that must succeed before the refresh.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Reports the restart or reload it would do without doing it.
  diff_mode:
    support: none
    description: A refresh changes no file, so there is no diff.
notes:
  - The reload time is kept in C(/run/wsgi-stack/refreshed/), which only
    root can write; a reload made by anything else is not seen, and only
    costs a second reload.
"""

EXAMPLES = r"""
- name: Reload nginx
  wsgi.stack.service_refresh:
    name: nginx.service
    state: reloaded
    changed_paths: [/etc/nginx/sites-available/hello.conf, /etc/ssl/wsgi-stack/hello/fullchain.pem]
    test: [nginx, -t, -q]
"""

RETURN = r"""
reason:
  description: Why the service was, or was not, refreshed.
  returned: always
  type: str
  sample: hello.service started after its files last changed
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wsgi.stack.plugins.module_utils.changes import MARGIN, newest_change, process_start

STAMPS = "/run/wsgi-stack/refreshed"


def last_refresh(name, pid, state, stamps=STAMPS, proc="/proc"):
    """When the running service last read what state refreshes: its start, or
    for a reload also a later reload by this module."""
    started = process_start(pid, proc)
    if state == "restarted":
        return started
    try:
        reloaded = os.stat(os.path.join(stamps, name)).st_mtime
    except FileNotFoundError:
        reloaded = 0.0
    return max(started, reloaded)


def decide(state, unit, changed, refreshed):
    """(act, reason) from the unit's properties and the two times."""
    if unit.get("LoadState") != "loaded":
        return False, f"{unit['Id']} is not installed"
    active = unit.get("ActiveState") == "active" and int(unit.get("MainPID") or 0) > 0
    if not active:
        if state == "reloaded":
            return False, f"{unit['Id']} is not running"
        return True, f"{unit['Id']} is not running"
    if refreshed is not None and refreshed > changed + MARGIN:
        return False, f"{unit['Id']} started or was reloaded after its files last changed"
    return True, f"{unit['Id']} runs files that changed since it started"


def show(module, name):
    rc, out, err = module.run_command(
        ["systemctl", "show", "--property=Id,LoadState,ActiveState,MainPID", "--", name])
    if rc != 0:
        module.fail_json(msg=f"systemctl show {name}: {err.strip()}")
    unit = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    unit.setdefault("Id", name)
    return unit


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["restarted", "reloaded"], "required": True},
            "changed_paths": {"type": "list", "elements": "path", "required": True},
            "test": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    name, state = module.params["name"], module.params["state"]
    unit = show(module, name)
    refreshed = None
    if unit.get("LoadState") == "loaded" and int(unit.get("MainPID") or 0) > 0:
        try:
            refreshed = last_refresh(unit["Id"], int(unit["MainPID"]), state)
        except (OSError, IndexError, ValueError):
            refreshed = None  # the process just ended: refresh
    act, reason = decide(state, unit, newest_change(module.params["changed_paths"]), refreshed)
    if not act or module.check_mode:
        module.exit_json(changed=act, reason=reason)
    if module.params["test"]:
        rc, out, err = module.run_command(module.params["test"])
        if rc != 0:
            module.fail_json(msg=f"{' '.join(module.params['test'])} failed: {name} keeps running what it ran",
                             rc=rc, stdout=out, stderr=err)
    # Stamped before: a file changed while the service reloads is seen next time.
    stamp = os.path.join(STAMPS, unit["Id"])
    if state == "reloaded":
        os.makedirs(STAMPS, mode=0o700, exist_ok=True)
        with open(stamp, "w", encoding="utf-8") as f:
            f.write(unit["MainPID"] + "\n")
    verb = "restart" if state == "restarted" else "reload"
    rc, out, err = module.run_command(["systemctl", verb, "--", name])
    if rc != 0:
        if state == "reloaded":
            os.unlink(stamp)
        module.fail_json(msg=f"systemctl {verb} {name}: {err.strip()}", rc=rc)
    module.exit_json(changed=True, reason=reason)


if __name__ == "__main__":
    main()
