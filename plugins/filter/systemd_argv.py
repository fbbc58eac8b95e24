# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A command line for a unit's ExecStart=."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: systemd_argv
short_description: A command and its arguments as a unit file's ExecStart= value
description:
  - Each word double-quoted, with what systemd would otherwise expand (C(%)
    specifiers, C($) variables) or unquote (C(\), C(")) escaped, so that the
    process gets exactly the words given.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
options:
  _input:
    description: The command and its arguments.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
exec_start: "/usr/bin/env -- {{ ['rq', 'worker', '--url', 'redis://localhost:6379/0'] | wsgi.stack.systemd_argv }}"
"""

RETURN = r"""
_value:
  description: The words, quoted for systemd.
  type: str
"""


def systemd_argv(argv):
    def word(text):
        text = text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
        return f'"{text}"'
    return " ".join(word(str(arg)) for arg in argv)


class FilterModule:
    def filters(self):
        return {"systemd_argv": systemd_argv}
