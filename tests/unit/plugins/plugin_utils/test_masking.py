"""The masking rule, and the hook runner the app role runs on the host."""

import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.wsgi.stack.plugins.plugin_utils import masking

RUNNER = Path(masking.__file__)


def test_values_shorter_than_six_characters_are_left():
    assert masking.mask("token abcde and abcdef", ["abcde", "abcdef"]) == "token abcde and ********"


def test_a_value_is_masked_before_its_prefixes():
    assert masking.mask("secret-longer", ["secret", "secret-longer"]) == "********"


def runner(*args, env=None):
    """The file run as the app role runs it: python3 -c <its text> NAME... -- COMMAND..."""
    return subprocess.run([sys.executable, "-I", "-c", RUNNER.read_text(), *args],
                          capture_output=True, text=True, env=env, check=False)


def test_the_hook_runner_masks_the_named_variables_on_both_streams():
    env = {"SECRET_KEY": "s3cr3t-value", "DEBUG": "0", "PATH": "/usr/bin:/bin"}
    done = runner("SECRET_KEY", "DEBUG", "--", "sh", "-c", 'echo "key $SECRET_KEY"; echo "err $SECRET_KEY" >&2; exit 3',
                  env=env)
    assert (done.returncode, done.stdout, done.stderr) == (3, "key ********\n", "err ********\n")


@pytest.mark.parametrize("signal, status", [("TERM", 143), ("KILL", 137)])
def test_a_hook_ended_by_a_signal_reports_it_as_a_shell_does(signal, status):
    done = runner("--", "sh", "-c", f"kill -{signal} $$", env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == status
