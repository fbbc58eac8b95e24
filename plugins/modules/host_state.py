#!/usr/bin/python
# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read accounts, groups and paths of a host in one round trip."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_state
short_description: Read accounts, groups and paths of a host in one call, following no link
description:
  - Looks up system accounts and groups and describes paths, without
    changing anything. A deploy with nothing to change compares this state
    with what it wants and skips the tasks that would find nothing to do,
    instead of paying a round trip to the host for each of them.
  - Paths are described with C(lstat), so a link is reported as a link and
    never followed.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
options:
  users:
    description: Account names to look up.
    type: list
    elements: str
    default: []
  groups:
    description: Group names to look up.
    type: list
    elements: str
    default: []
  paths:
    description: Absolute paths to describe.
    type: list
    elements: path
    default: []
  checksums:
    description:
      - Paths among I(paths) whose SHA-1 checksum to add, when they are regular
        files (opened without following a link).
    type: list
    elements: path
    default: []
  certificates:
    description:
      - Paths among I(paths) whose first PEM certificate to read, when they are
        regular files (opened without following a link), with the host's
        Python C(cryptography) library; without it, nothing is added.
    type: list
    elements: path
    default: []
  listings:
    description: Paths among I(paths) whose entries to list, when they are directories.
    type: list
    elements: path
    default: []
  packages:
    description: Debian packages whose installed version to read (C(dpkg-query)).
    type: list
    elements: str
    default: []
  units:
    description: systemd units whose state to read (C(systemctl show)).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: It only reads, so check mode reads the same state.
  diff_mode:
    support: none
    description: It changes nothing, so there is no diff.
"""

EXAMPLES = r"""
- name: Read what the application's deploy compares against
  wsgi.stack.host_state:
    users: [hello]
    groups: [hello]
    paths: [/srv/hello, /srv/hello/current]
  register: state
"""

RETURN = r"""
users:
  description: Each account by name, or null where it does not exist.
  returned: always
  type: dict
  sample: {hello: {uid: 998, gid: 998, home: /srv/hello, shell: /usr/sbin/nologin}}
groups:
  description: Each group by name, or null where it does not exist.
  returned: always
  type: dict
  sample: {hello: {gid: 998}}
packages:
  description: Each package's installed version, or null where it is not installed.
  returned: always
  type: dict
  sample: {nginx: 1.22.1-9+deb12u2}
units:
  description: Each unit's C(ActiveState) and C(UnitFileState), as C(active) and C(enabled).
  returned: always
  type: dict
  sample: {hello.service: {active: active, enabled: enabled}}
hostname:
  description: The machine's host name (C(uname -n)), whatever its inventory name.
  returned: always
  type: str
  sample: web1
paths:
  description: >-
    Each path, with C(exists) and, where it exists, C(type) (directory, file,
    link or other), C(owner), C(group), C(mode) (octal string), C(mtime),
    for a link C(target), for a file in I(checksums) C(checksum), for a file
    in I(certificates) C(certificate) (C(not_after) in seconds since the
    epoch, C(subject) and C(issuer) common names, C(names): the subject
    alternative DNS names; null where it holds no readable certificate),
    and for a directory in I(listings) C(entries) (sorted names).
  returned: always
  type: dict
  sample: {/srv/hello/current: {exists: true, type: link, owner: root, group: root, mode: "0777",
                                mtime: 1764100000.0, target: /srv/hello/releases/f22ad287f5f8}}
"""

import grp
import hashlib
import os
import pwd
import stat
from datetime import timezone

from ansible.module_utils.basic import AnsibleModule


def owner_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def describe(path):
    """What lstat says of one path, with names for its owner and group."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return {"exists": False}
    kind = ("link" if stat.S_ISLNK(st.st_mode) else "directory" if stat.S_ISDIR(st.st_mode)
            else "file" if stat.S_ISREG(st.st_mode) else "other")
    out = {
        "exists": True,
        "type": kind,
        "owner": owner_name(st.st_uid),
        "group": group_name(st.st_gid),
        "mode": "%04o" % stat.S_IMODE(st.st_mode),
        "mtime": st.st_mtime,
    }
    if kind == "link":
        out["target"] = os.readlink(path)
    return out


def checksum(path):
    """SHA-1 of a regular file, read through a descriptor that refused a link."""
    digest = hashlib.sha1()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def certificate(path):
    """The first PEM certificate of a regular file (opened refusing a link):
    its expiry, subject and issuer common names and DNS names; None when
    the file holds none that parses."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read()
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        return None

    def common_name(name):
        values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return values[0].value if values else ""

    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = names.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    # not_valid_after_utc is new in cryptography 42 (Debian 13); Debian 12 has 38.
    if hasattr(cert, "not_valid_after_utc"):
        expiry = cert.not_valid_after_utc
    else:
        expiry = cert.not_valid_after.replace(tzinfo=timezone.utc)
    return {"not_after": expiry.timestamp(), "subject": common_name(cert.subject), "issuer": common_name(cert.issuer),
            "names": sorted(names)}


def package_versions(module, names):
    """The installed version of each package, or None."""
    versions = dict.fromkeys(names)
    if not names:
        return versions
    # Unknown packages make dpkg-query exit 1 and print only the others.
    _rc, out, _err = module.run_command(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Status} ${Version}\n", *names])
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] in versions and fields[1] == "installed":
            versions[fields[0]] = fields[2]
    return versions


def unit_states(module, names):
    """ActiveState and UnitFileState of each unit (empty strings where unknown)."""
    states = {name: {"active": "", "enabled": ""} for name in names}
    if not names:
        return states
    _rc, out, _err = module.run_command(
        ["systemctl", "show", "--property=Id,ActiveState,UnitFileState", "--", *names])
    # One block per unit, in the order asked, separated by blank lines.
    for name, block in zip(names, out.strip().split("\n\n")):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        states[name] = {"active": fields.get("ActiveState", ""), "enabled": fields.get("UnitFileState", "")}
    return states


def user(name):
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return {"uid": entry.pw_uid, "gid": entry.pw_gid, "home": entry.pw_dir, "shell": entry.pw_shell}


def group(name):
    try:
        return {"gid": grp.getgrnam(name).gr_gid}
    except KeyError:
        return None


def main():
    module = AnsibleModule(
        argument_spec={
            "users": {"type": "list", "elements": "str", "default": []},
            "groups": {"type": "list", "elements": "str", "default": []},
            "paths": {"type": "list", "elements": "path", "default": []},
            "checksums": {"type": "list", "elements": "path", "default": []},
            "certificates": {"type": "list", "elements": "path", "default": []},
            "listings": {"type": "list", "elements": "path", "default": []},
            "packages": {"type": "list", "elements": "str", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    bad = [p for p in module.params["paths"] if not os.path.isabs(p)]
    if bad:
        module.fail_json(msg="paths must be absolute: %s" % ", ".join(bad))
    paths = {p: describe(p) for p in module.params["paths"]}
    for p in module.params["checksums"]:
        if paths.get(p, {}).get("type") == "file":
            paths[p]["checksum"] = checksum(p)
    wanted = [p for p in module.params["certificates"] if paths.get(p, {}).get("type") == "file"]
    if wanted:
        try:
            for p in wanted:
                paths[p]["certificate"] = certificate(p)
        except ImportError:
            pass
    for p in module.params["listings"]:
        if paths.get(p, {}).get("type") == "directory":
            paths[p]["entries"] = sorted(os.listdir(p))
    module.exit_json(
        changed=False,
        hostname=os.uname().nodename,
        users={n: user(n) for n in module.params["users"]},
        groups={n: group(n) for n in module.params["groups"]},
        paths=paths,
        packages=package_versions(module, module.params["packages"]),
        units=unit_states(module, module.params["units"]),
    )


if __name__ == "__main__":
    main()
