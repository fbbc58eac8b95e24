# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check of an application's name that every role and the planning filter make."""

from __future__ import annotations

from ansible_collections.wsgi.stack.plugins.module_utils.names import app_name_refusals

DOCUMENTATION = r"""
---
name: app_name_refusals
short_description: What is wrong with an application's name
description:
  - Returns the messages that refuse C(app_name), an empty list when it is usable as the
    application's user, group, directory and unit name and not one the collection keeps.
  - The roles' input checks and the planning filter M(wsgi.stack.app_instances) share this rule.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
options:
  _input:
    description: The application's name.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse an application name that cannot be a user or a directory
  ansible.builtin.fail:
    msg: "{{ app_name | wsgi.stack.app_name_refusals | join(' ') }}"
  when: app_name | wsgi.stack.app_name_refusals | length > 0
"""

RETURN = r"""
_value:
  description: Messages naming the variable, empty when the name is usable.
  type: list
  elements: str
  sample: ["app_name 'nginx' is reserved by wsgi.stack (its own nginx site, host CA and nginx use it); choose another"]
"""


class FilterModule:
    def filters(self):
        return {"app_name_refusals": app_name_refusals}
