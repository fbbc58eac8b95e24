# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check of an application's DNS names that the tls and nginx roles make."""

from __future__ import annotations

from ansible_collections.wsgi.stack.plugins.module_utils.names import domain_refusals

DOCUMENTATION = r"""
---
name: domain_refusals
short_description: What is wrong with an application's DNS names
description:
  - Returns the message that refuses C(app_domains), an empty list when it holds at least one
    name and every name is a DNS name (letters, digits, '-', dots), or a wildcard one level deep.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
positional: app_name
options:
  _input:
    description: The application's DNS names.
    type: list
    elements: str
    required: true
  app_name:
    description: The application's name, for the message.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Check the settings
  ansible.builtin.assert:
    that: __refused | length == 0
    fail_msg: "{{ __refused | join(' ') }}"
  vars:
    __refused: "{{ app_domains | wsgi.stack.domain_refusals(app_name) }}"
"""

RETURN = r"""
_value:
  description: Messages naming the variable, empty when the names are usable.
  type: list
  elements: str
  sample: ["app_domains must list the DNS names of hello (letters, digits, '-', dots; a leading '*.' for a wildcard); invalid: bad_name!"]
"""


class FilterModule:
    def filters(self):
        return {"domain_refusals": domain_refusals}
