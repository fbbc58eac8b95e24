"""Fixtures shared by the testinfra suites of every Molecule scenario.

Molecule's verifier runs pytest with its own environment (inventory, ansible.cfg
with the collection's paths), so a test can run ansible-playbook against the
scenario's instances exactly as a user would.
"""

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.M,
)


@dataclass
class PlaybookRun:
    rc: int
    output: str

    def recap(self):
        """Per-host counters of the PLAY RECAP, as ints."""
        return {
            m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
            for m in RECAP.finditer(self.output)
        }

    def changed(self):
        return sum(host["changed"] for host in self.recap().values())


@pytest.fixture(scope="session")
def ansible_playbook():
    """Run a playbook of the scenario against its instances.

    ansible_playbook("converge.yml", "--check", "--diff", extra_vars={...})
    """
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]

    def run(playbook, *args, extra_vars=None):
        cmd = ["ansible-playbook", "-i", inventory, str(scenario / playbook), *args]
        if extra_vars:
            cmd += ["--extra-vars", json.dumps(extra_vars)]
        proc = subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=900,
            check=False,
            env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
        )
        return PlaybookRun(proc.returncode, proc.stdout)

    return run
