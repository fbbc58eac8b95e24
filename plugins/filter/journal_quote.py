# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lines of a journal that say why a deploy failed, secrets masked."""

from __future__ import annotations

import re

from ansible_collections.wsgi.stack.plugins.plugin_utils.masking import mask

DOCUMENTATION = r"""
---
name: journal_quote
short_description: The lines of a service's journal that say why it failed, secrets masked
description:
  - From the lines a failed deploy read of its service's journal, the
    decisive ones, each once, namely the exceptions the application raised (a
    traceback's last line), then the last reasons Gunicorn and systemd gave.
    A service restarting on failure repeats its traceback with new
    timestamps, which would crowd them out of a plain tail.
  - Without such lines, the last twelve.
  - Lines in which systemd says what it is ignoring (a loopback device a
    container lacks) are no cause and are left out.
  - Every value of I(secrets) of six characters or more is replaced by
    C(********), the same rule as the app role's masking of hook output.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
options:
  _input:
    description: The journal's lines, oldest first.
    type: list
    elements: str
    required: true
  secrets:
    description: The values never to show, such as C(app_env)'s.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Say why the service failed
  ansible.builtin.debug:
    msg: "{{ journal.stdout_lines | wsgi.stack.journal_quote(app_env.values() | list) }}"
"""

RETURN = r"""
_value:
  description: The chosen lines joined by C( | ), masked; empty without lines.
  type: str
  sample: "ModuleNotFoundError: No module named 'flask_sqlalchemy' | hello.service: Failed with result 'exit-code'."
"""

EXCEPTION = re.compile(r"^\s*[A-Za-z_][\w.]*(Error|Exception):")
REASON = re.compile(r"(?i)reason|failed")
IGNORED = re.compile(r"ignoring")


def unique(lines):
    """lines without repeats, in the order of their first appearance."""
    return list(dict.fromkeys(lines))


def journal_quote(lines, secrets=()):
    read = [str(line) for line in lines or [] if not IGNORED.search(str(line))]
    exceptions = unique(line for line in read if EXCEPTION.search(line))[-5:]
    reasons = [line for line in read if REASON.search(line)][-3:]
    decisive = unique(exceptions + reasons)
    return mask(" | ".join(decisive or read[-12:]), secrets or [])


class FilterModule:
    def filters(self):
        return {"journal_quote": journal_quote}
