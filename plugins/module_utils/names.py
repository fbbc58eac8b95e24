# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The naming rules that the roles' input checks and the planning filter share."""

from __future__ import annotations

import re

# The application's user, group, directories and systemd units carry it;
# useradd takes at most 32 characters.
APP_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")

# The collection's own files carry these names: the default nginx site
# (wsgi-stack-default), the host CA's directory (/etc/ssl/wsgi-stack/ca),
# and /etc/nginx, which a first deploy would make before nginx is installed.
RESERVED_APP_NAME = re.compile(r"wsgi-stack.*|ca|nginx")

# A DNS name, or a wildcard one level deep.
DOMAIN = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)


def app_name_refusals(name):
    """What is wrong with an application's name, as messages (none if usable)."""
    name = str(name)
    if not APP_NAME.fullmatch(name):
        return [f"app_name must be 1-32 lower case letters, digits, '-' or '_', starting with a letter; got {name!r}"]
    if RESERVED_APP_NAME.fullmatch(name):
        return [f"app_name {name!r} is reserved by wsgi.stack (its own nginx site, host CA and nginx use it);"
                " choose another"]
    return []


def domain_refusals(domains, app_name):
    """What is wrong with an application's list of DNS names, as messages."""
    domains = [str(domain) for domain in domains or []]
    invalid = [domain for domain in domains if not DOMAIN.fullmatch(domain)]
    if domains and not invalid:
        return []
    return [f"app_domains must list the DNS names of {app_name} (letters, digits, '-', dots; a leading '*.'"
            f" for a wildcard); invalid: {', '.join(invalid) or 'none given'}"]
