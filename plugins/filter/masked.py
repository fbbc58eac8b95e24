# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lines to show, with secret values masked."""

from __future__ import annotations

from ansible_collections.wsgi.stack.plugins.plugin_utils.masking import mask

DOCUMENTATION = r"""
---
name: masked
short_description: Lines with secret values masked
description:
  - Each line with every value of I(secrets) of six characters or more replaced by C(********),
    the same rule as the app role's masking of hook output and M(wsgi.stack.journal_quote) (filter).
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
options:
  _input:
    description: Lines to print, such as a journal's.
    type: list
    elements: str
    required: true
  secrets:
    description: Values no line may show (an application's C(app_env) values).
    elements: str
    type: list
    default: []
"""

EXAMPLES = r"""
- name: Show the service's journal
  ansible.builtin.debug:
    msg: "{{ journal.stdout_lines | wsgi.stack.masked(app_env.values() | list) }}"
"""

RETURN = r"""
_value:
  description: The lines, masked.
  type: list
  elements: str
"""


def masked(lines, secrets=()):
    return [mask(str(line), secrets or []) for line in lines or []]


class FilterModule:
    def filters(self):
        return {"masked": masked}
