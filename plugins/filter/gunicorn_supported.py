# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a Gunicorn release is one wsgi.stack supports."""

from __future__ import annotations

from ansible_collections.wsgi.stack.plugins.module_utils.gunicorn import supported

DOCUMENTATION = r"""
---
name: gunicorn_supported
short_description: Whether a Gunicorn release is within the supported range
description:
  - True when the input is a release number (C(27.0) or C(27.0.1), nothing else) from the range's
    C(oldest) up to, not including, its C(below).
  - The app role's input check uses it on C(app_gunicorn_version); M(wsgi.stack.gunicorn_pin) (lookup)
    applies the same rule to a pin the application makes.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
options:
  _input:
    description: The release, such as C(27.0.1).
    type: str
    required: true
  versions:
    description: The range, as C(wsgi_stack_gunicorn_versions) of M(wsgi.stack.common) (role) gives it.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Refuse a Gunicorn outside the supported range
  ansible.builtin.assert:
    that: app_gunicorn_version | wsgi.stack.gunicorn_supported(wsgi_stack_gunicorn_versions)
"""

RETURN = r"""
_value:
  description: Whether the release is supported.
  type: bool
  sample: true
"""


class FilterModule:
    def filters(self):
        return {"gunicorn_supported": supported}
