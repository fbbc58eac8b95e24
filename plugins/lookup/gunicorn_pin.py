# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Gunicorn a release installs, given what the application pins."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: gunicorn_pin
short_description: Which Gunicorn a release installs, given the application's own requirements
description:
  - Reads the application's packaging files on the controller (a pip requirements file and the
    files it includes with C(-r), C(pyproject.toml) dependencies, PEP 621 or Poetry, or the
    C(Requires-Dist) of a wheel or sdist) and finds what they ask of Gunicorn. Nothing of the
    application runs.
  - An exact pin (C(gunicorn==X)) within the supported range chooses the release's Gunicorn;
    otherwise C(default) is installed, if every Gunicorn requirement allows it.
  - Files that do not exist are skipped.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
options:
  _terms:
    description: Paths of the application's packaging files on the controller.
    type: list
    elements: path
    required: true
  default:
    description: The release installed when nothing pins one (C(app_gunicorn_version)).
    type: str
    required: true
  versions:
    description: The supported range, as C(wsgi_stack_gunicorn_versions) of M(wsgi.stack.common) (role) gives it.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Take the Gunicorn the application pins
  ansible.builtin.set_fact:
    app_gunicorn_version: >-
      {{ lookup('wsgi.stack.gunicorn_pin', app_source.path ~ '/requirements.txt',
                default=app_gunicorn_version, versions=wsgi_stack_gunicorn_versions).version }}
"""

RETURN = r"""
_raw:
  description: One dictionary.
  type: list
  elements: dict
  contains:
    version:
      description: The Gunicorn release to install.
      type: str
      sample: 27.0.0
    default:
      description: The C(default) it was given.
      type: str
      sample: 27.0.1
    pinned_by:
      description: The file and requirement that chose I(version), empty when it is the default.
      type: str
      sample: "requirements.txt: gunicorn==27.0.0"
    refused:
      description: Why no supported release fits, naming both versions; empty when one does.
      type: str
      sample: >-
        the application pins Gunicorn 21.2.0 (requirements.txt: gunicorn==21.2.0); wsgi.stack supports
        Gunicorn 27.0.0 up to, not including, 28, and app_gunicorn_version is 27.0.1: raise the pin to a
        supported release, or remove it
"""


import tarfile
import zipfile

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.wsgi.stack.plugins.module_utils.gunicorn import release_gunicorn


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        versions = self.get_option("versions")
        if not {"oldest", "below"} <= set(versions):
            raise AnsibleLookupError("gunicorn_pin: versions needs 'oldest' and 'below'")
        try:
            return [release_gunicorn(terms, self.get_option("default"), versions)]
        except (OSError, ValueError, RuntimeError, tarfile.TarError, zipfile.BadZipFile) as exc:
            raise AnsibleLookupError(f"gunicorn_pin: cannot read the application's requirements: {exc}") from exc
