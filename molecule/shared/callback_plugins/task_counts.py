"""Test support: what each ansible-playbook run of a scenario did, task by
task, for the tests to count (how often a role's install tasks ran).

Enabled in a scenario's molecule.yml (ANSIBLE_CALLBACKS_ENABLED=task_counts,
with this directory in ANSIBLE_CALLBACK_PLUGINS). Each run writes one JSON
file under $TASK_COUNTS_DIR: whether it ran in check mode, and for every
task (by its file and line), the hosts it ran on and the hosts it skipped."""

import json
import os
import time
from collections import defaultdict

from ansible import context
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: task_counts
    type: aggregate
    short_description: Write what each task did per host to a JSON file (wsgi.stack's tests)
    description: One file per run under $TASK_COUNTS_DIR, for the Molecule tests to count.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_counts"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.tasks = defaultdict(lambda: {"name": "", "ran": [], "skipped": []})

    def _record(self, result, outcome):
        task = result._task
        entry = self.tasks[task.get_path() or task.name]
        entry["name"] = task.name or task.action
        entry[outcome].append(result._host.get_name())

    def v2_runner_on_ok(self, result):
        self._record(result, "ran")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "ran")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_playbook_on_stats(self, stats):
        folder = os.environ.get("TASK_COUNTS_DIR")
        if not folder:
            return
        os.makedirs(folder, exist_ok=True)
        run = {"check": bool(context.CLIARGS.get("check")), "tasks": self.tasks}
        with open(os.path.join(folder, f"{time.time():.6f}-{os.getpid()}.json"), "w") as out:
            json.dump(run, out, indent=1)
