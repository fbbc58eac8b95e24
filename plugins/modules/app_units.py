#!/usr/bin/python
# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An application's own systemd units beside its web service: installed,
started, restarted with what they read, and removed once dropped."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_units
short_description: The systemd units of an application's processes and timers, as one set
description:
  - Makes the unit files of one application's processes and timers in
    C(/etc/systemd/system) exactly I(units), each with a first line naming
    the application. A unit file of that application that I(units) no
    longer lists is stopped, disabled and removed, and so is an instance of
    its templates that I(enabled) no longer lists.
  - New or changed unit files are checked with C(systemd-analyze verify)
    before any is installed; a unit file of the same name that is not this
    application's (another package's, another application's) is never
    replaced, and the module fails naming it.
  - Every unit of I(enabled) (template instances such as C(blog-worker@1.service),
    timers) is enabled and started. A running service of I(enabled) that
    started before its unit file or one of I(restart_reads) last changed is
    restarted, all of them at once, so processes follow a new release, a
    rollback or a new environment.
  - With I(state=read), nothing changes; the module returns the state of
    every unit of the application.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
options:
  app:
    description: The application's name; each of its unit names starts with it and C(-).
    type: str
    required: true
  units:
    description: Unit file name to content, for state C(present).
    type: dict
    default: {}
  enabled:
    description: Units (template instances, timers, services) to enable and start.
    type: list
    elements: str
    default: []
  restart_reads:
    description: Files and links the services read when they start, compared by modification time, links not followed.
    type: list
    elements: path
    default: []
  state:
    description: C(present) makes the set I(units); C(absent) removes every unit of the application; C(read) reports.
    type: str
    choices: [present, absent, read]
    default: present
attributes:
  check_mode:
    support: full
    description: Reports what it would write, remove, start and restart.
  diff_mode:
    support: full
    description: The unit files before and after.
"""

EXAMPLES = r"""
- name: Run two RQ workers and a nightly job of blog
  wsgi.stack.app_units:
    app: blog
    units:
      blog-worker@.service: "{{ lookup('ansible.builtin.template', 'worker.service.j2') }}"
      blog-purge.service: "{{ lookup('ansible.builtin.template', 'job.service.j2') }}"
      blog-purge.timer: "{{ lookup('ansible.builtin.template', 'job.timer.j2') }}"
    enabled: [blog-worker@1.service, blog-worker@2.service, blog-purge.timer]
    restart_reads: [/srv/blog/current, /etc/blog/env]

- name: Report them
  wsgi.stack.app_units:
    app: blog
    state: read
"""

RETURN = r"""
written:
  description: Unit files installed or replaced.
  returned: always
  type: list
  elements: str
removed:
  description: Unit files and template instances stopped and removed.
  returned: always
  type: list
  elements: str
started:
  description: Units enabled or started.
  returned: always
  type: list
  elements: str
restarted:
  description: Services restarted for what they read.
  returned: always
  type: list
  elements: str
lines:
  description: With I(state=read), each unit's state in a sentence.
  returned: when state is read
  type: list
  elements: str
  sample: ["blog-purge.service inactive (dead) since Mon 2026-12-07 03:00:04 UTC: last run exit-code, exit status 3"]
units:
  description: With I(state=read), each unit of the application and its state.
  returned: when state is read
  type: list
  elements: dict
  sample: [{unit: blog-worker@1.service, active: active, since: "Mon 2026-12-07 10:02:11 UTC", result: success}]
"""

import os
import re
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wsgi.stack.plugins.module_utils.changes import MARGIN, newest_change, process_start

UNIT_DIR = "/etc/systemd/system"
# Where packages and administrators put units: a name found there is not ours.
OTHER_DIRS = ["/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"]
NAME = re.compile(r"^[A-Za-z0-9_.-]+(@[A-Za-z0-9_.-]*)?\.(service|timer)$")
SHOWN = "Id,LoadState,ActiveState,SubState,UnitFileState,MainPID,Result,ExecMainStatus,StateChangeTimestamp," \
        "LastTriggerUSec,NextElapseUSecRealtime"


def marker(app):
    """The first line of every unit file of app."""
    return f"# A process or timer of {app}, managed by Ansible (wsgi.stack.app_units)"


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def owned(app, unit_dir=UNIT_DIR):
    """The application's unit files now installed: name to content."""
    first = marker(app) + "\n"
    found = {}
    for name in sorted(os.listdir(unit_dir)):
        path = os.path.join(unit_dir, name)
        if NAME.match(name) and os.path.isfile(path) and not os.path.islink(path):
            text = read(path)
            if text is not None and text.startswith(first):
                found[name] = text
    return found


def template_of(unit):
    """blog-worker@.service for blog-worker@2.service; None for a unit that is no instance."""
    match = re.match(r"^(.+@)[^.@]+(\.service)$", unit)
    return match.group(1) + match.group(2) if match else None


def instances(templates, unit_dir=UNIT_DIR):
    """The enabled instances of the templates: the links in the .wants directories."""
    found = set()
    for entry in os.listdir(unit_dir):
        wants = os.path.join(unit_dir, entry)
        if entry.endswith((".wants", ".requires")) and os.path.isdir(wants):
            found.update(name for name in os.listdir(wants) if template_of(name) in templates)
    return found


def plan(app, units, enabled, installed):
    """What to write and remove, or the error that refuses the set."""
    prefix = app + "-"
    for name in list(units) + list(enabled):
        if not NAME.match(name) or not name.startswith(prefix):
            return None, None, f"{name} is not a unit name of {app} (it must start with {prefix})"
    for name in enabled:
        if (template_of(name) or name) not in units:
            return None, None, f"{name} is to be enabled but no unit file of {app} defines it"
    for name in units:
        if name not in installed:
            theirs = [d for d in [UNIT_DIR] + OTHER_DIRS if os.path.exists(os.path.join(d, name))]
            if theirs:
                return None, None, (f"{name} would replace {os.path.join(theirs[0], name)}, which is not a unit of {app}: "
                                    "rename the process or timer")
    wanted = {name: marker(app) + "\n" + text.rstrip("\n") + "\n" for name, text in units.items()}
    write = {name: text for name, text in wanted.items() if installed.get(name) != text}
    remove = sorted(set(installed) - set(wanted))
    return write, remove, None


def verify(module, app, units, write):
    """systemd-analyze verify of the new files, beside the set's others."""
    if not write:
        return
    staging = tempfile.mkdtemp(prefix=f"wsgi-stack-units-{app}-")
    try:
        for name, text in units.items():
            with open(os.path.join(staging, name), "w", encoding="utf-8") as f:
                f.write(text)
        rc, out, err = module.run_command(["systemd-analyze", "verify", "--"] + [os.path.join(staging, n) for n in sorted(write)])
        if rc != 0:
            module.fail_json(msg=f"the units of {app} do not verify, nothing was installed: "
                                 + " ".join((err or out).replace(staging + "/", "").split()), rc=rc)
    finally:
        shutil.rmtree(staging)


def systemctl(module, *args, check=True):
    rc, out, err = module.run_command(["systemctl", *args])
    if rc != 0 and check:
        module.fail_json(msg=f"systemctl {' '.join(args)}: {err.strip() or out.strip()}", rc=rc)
    return out


def show(module, names):
    """systemctl show of each unit: a list of property dicts, in order."""
    if not names:
        return []
    out = systemctl(module, "show", f"--property={SHOWN}", "--", *names)
    blocks = [dict(line.split("=", 1) for line in block.splitlines() if "=" in line) for block in out.strip().split("\n\n")]
    return [{"Id": name, **block} for name, block in zip(names, blocks)]


def started_at(unit):
    """When the unit's main process started, in seconds since the epoch (None if it runs none)."""
    pid = int(unit.get("MainPID") or 0)
    try:
        return process_start(pid) if pid else None
    except (OSError, IndexError, ValueError):
        return None  # it just ended


def report(module, app, installed):
    """The state of each unit of the application: its timers, their jobs, and running or enabled instances."""
    templates = {name for name in installed if name.endswith("@.service")}
    loaded = systemctl(module, "list-units", "--all", "--plain", "--no-legend", "--", *[t.replace("@.", "@*.") for t in templates]) \
        if templates else ""
    names = sorted((set(installed) - templates) | instances(templates)
                   | {line.split()[0] for line in loaded.splitlines() if line.strip()})
    rows = []
    for unit in show(module, names):
        row = {"unit": unit["Id"], "active": unit.get("ActiveState"), "sub": unit.get("SubState"),
               "enabled": unit.get("UnitFileState"), "since": unit.get("StateChangeTimestamp")}
        if unit["Id"].endswith(".service"):
            row.update(result=unit.get("Result"), status=unit.get("ExecMainStatus"))
        else:
            row.update(last=unit.get("LastTriggerUSec"), next=unit.get("NextElapseUSecRealtime"))
        rows.append(row)
    return rows


def line(row):
    """One unit's state as status.yml shows it."""
    if row["unit"].endswith(".timer"):
        return f"{row['unit']} {row['active']}: last {row['last'] or 'never'}, next {row['next'] or '-'}"
    text = f"{row['unit']} {row['active']} ({row['sub']}) since {row['since'] or '-'}"
    if row["result"] != "success":
        text += f": last run {row['result']}, exit status {row['status']}"
    return text


def main():
    module = AnsibleModule(
        argument_spec={
            "app": {"type": "str", "required": True},
            "units": {"type": "dict", "default": {}},
            "enabled": {"type": "list", "elements": "str", "default": []},
            "restart_reads": {"type": "list", "elements": "path", "default": []},
            "state": {"type": "str", "choices": ["present", "absent", "read"], "default": "present"},
        },
        supports_check_mode=True,
    )
    app, state = module.params["app"], module.params["state"]
    installed = owned(app)
    if state == "read":
        rows = report(module, app, installed)
        module.exit_json(changed=False, units=rows, lines=[line(row) for row in rows])
    units = module.params["units"] if state == "present" else {}
    enabled = module.params["enabled"] if state == "present" else []
    write, remove, error = plan(app, units, enabled, installed)
    if error:
        module.fail_json(msg=error)
    templates = {name for name in installed if name.endswith("@.service")}
    # Instances enabled before that are not wanted now (a count lowered, a process dropped).
    dropped = sorted(instances(templates) - set(enabled))
    result = {"written": sorted(write), "removed": remove + dropped, "started": [], "restarted": []}
    if module._diff:
        result["diff"] = [{"before_header": os.path.join(UNIT_DIR, n), "after_header": os.path.join(UNIT_DIR, n),
                           "before": installed.get(n, ""), "after": text} for n, text in sorted(write.items())]
    if not module.check_mode:
        verify(module, app, {**{n: t for n, t in installed.items() if n not in remove}, **write}, write)
        # Stopped before their files go. The enabled instances of a removed
        # template are in dropped (no instance of it can be enabled now);
        # those running without being enabled are stopped by pattern.
        named = [t for t in remove if not t.endswith("@.service")] + dropped
        running = [t.replace("@.", "@*.") for t in remove if t.endswith("@.service")]
        if named:
            systemctl(module, "disable", "--now", "--", *named, check=False)
        if running:
            systemctl(module, "stop", "--", *running, check=False)
        for name in remove:
            os.unlink(os.path.join(UNIT_DIR, name))
        for name, text in write.items():
            fd, tmp = tempfile.mkstemp(dir=UNIT_DIR, prefix=f".{name}.")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, os.path.join(UNIT_DIR, name))
        if write or remove or dropped:
            systemctl(module, "daemon-reload")
    if module.check_mode and write:
        # Units not installed yet have no state to read: each would start.
        result["started"] = [n for n in enabled if (template_of(n) or n) not in installed]
        enabled = [n for n in enabled if n not in result["started"]]
    for unit in show(module, enabled) if enabled else []:
        name = unit["Id"]
        if unit.get("UnitFileState") != "enabled" or unit.get("ActiveState") not in ("active", "activating", "reloading"):
            result["started"].append(name)
            continue
        since = started_at(unit)
        unit_file = os.path.join(UNIT_DIR, template_of(name) or name)
        # A timer reads its schedule again when it restarts; a service, its release and settings.
        stale = name in write if name.endswith(".timer") else (
            since is not None and since <= newest_change(module.params["restart_reads"] + [unit_file]) + MARGIN)
        if stale:
            result["restarted"].append(name)
    if not module.check_mode:
        if result["started"]:
            systemctl(module, "enable", "--now", "--", *result["started"])
        if result["restarted"]:
            systemctl(module, "restart", "--", *result["restarted"])
    changed = any(result[k] for k in ("written", "removed", "started", "restarted"))
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
