# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secret values kept out of what the roles print.

One rule, used in two places: on the controller, by the journal_quote
filter for the lines a failed deploy quotes; on the host, where the app
role runs this file with the host's Python to run a deploy hook and print
its output masked (it needs nothing but the standard library for that).
"""

from __future__ import annotations

import os
import subprocess
import sys

MASK = "********"
# Shorter values are left: masking every "true" or "1" would garble the
# output for little.
MIN_LENGTH = 6


def secrets(values):
    """The values worth masking, longest first, so that a value is replaced
    before any of its prefixes."""
    return sorted({str(value) for value in values if len(str(value)) >= MIN_LENGTH}, key=len, reverse=True)


def mask(text, values):
    """text with every value of values (of MIN_LENGTH or more) replaced by MASK."""
    for value in secrets(values):
        text = text.replace(value, MASK)
    return text


def run_masked(argv, environ=None):
    """NAME... -- COMMAND...: run COMMAND, write its output with the values of
    the environment variables NAME masked, and return its exit status (128 +
    the signal's number when a signal ended it, as a shell reports it)."""
    environ = os.environ if environ is None else environ
    split = argv.index("--")
    values = [environ.get(name, "") for name in argv[:split]]
    done = subprocess.run(argv[split + 1:], capture_output=True, check=False)
    sys.stdout.write(mask(done.stdout.decode(errors="replace"), values))
    sys.stderr.write(mask(done.stderr.decode(errors="replace"), values))
    return done.returncode if done.returncode >= 0 else 128 - done.returncode


if __name__ == "__main__":
    sys.exit(run_masked(sys.argv[1:]))
