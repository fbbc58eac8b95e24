#!/usr/bin/python
# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep a copy of the files that serve an application, and put them back."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: live_files
short_description: Keep the files an application is served with, and put them back after a failed deploy
description:
  - With I(state=kept), copies each of I(paths) as it is now (a regular
    file with its content, mode and owner, a symbolic link with its target,
    or the fact that it does not exist) into I(store), replacing what an
    earlier run kept there. This is the deploy's own bookkeeping, so it
    reports no change; in check mode it does nothing.
  - With I(state=restored), makes each path what it was when it was kept.
    A file is replaced by renaming a complete copy over it, a link is
    recreated, and a path that did not exist is removed. Paths that are
    already as kept are left alone.
  - Links are never followed. Every path and its directory must be writable
    by root only (configuration under C(/etc)), never by the application.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
options:
  paths:
    description: Absolute paths of regular files or symbolic links.
    type: list
    elements: path
    required: true
  store:
    description: Directory, readable by root only, where the copies are kept.
    type: path
    required: true
  state:
    description: Keep the paths as they are now, or put back what was kept.
    type: str
    choices: [kept, restored]
    required: true
  links:
    description:
      - Paths to report as they are now (not kept), that is where each
        symbolic link points, in the same round trip, also in check mode.
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
    description: Reports what it would keep or put back without writing.
  diff_mode:
    support: none
    description: File contents may be secrets (the environment file), so no diff is shown.
"""

EXAMPLES = r"""
- name: Keep what serves before the deploy changes it
  wsgi.stack.live_files:
    paths: [/etc/hello/env, /etc/hello/gunicorn.conf.py]
    store: /var/lib/wsgi-stack/kept/hello
    state: kept

- name: Put it back after a failure
  wsgi.stack.live_files:
    paths: [/etc/hello/env, /etc/hello/gunicorn.conf.py]
    store: /var/lib/wsgi-stack/kept/hello
    state: restored
  register: restored
"""

RETURN = r"""
kept:
  description: Each path with what was kept of it (C(file), C(link) or C(absent)).
  returned: state is kept and not check mode
  type: dict
  sample: {/etc/hello/env: file, /etc/nginx/sites-enabled/hello.conf: link}
links:
  description: Each of I(links) with its target, or null where it is not a symbolic link.
  returned: always
  type: dict
  sample: {/srv/hello/current: /srv/hello/releases/3f2a9c01d4e7}
restored:
  description: The paths that were different and were put back (or would be, in check mode).
  returned: state is restored
  type: list
  elements: str
  sample: [/etc/hello/gunicorn.conf.py]
"""

import json
import os
import secrets
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

MANIFEST = "manifest.json"


class Refused(Exception):
    """A path this module will not keep or restore."""


def read(path):
    """What path is now: {kind: absent}, {kind: link, target} or a file with
    its content (bytes), mode, uid and gid. Links are not followed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"kind": "absent"}
    if stat.S_ISLNK(st.st_mode):
        return {"kind": "link", "target": os.readlink(path)}
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"{path} is neither a regular file nor a link")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        content = f.read()
    return {"kind": "file", "content": content, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}


def link_target(path):
    """Where path points if it is a symbolic link, else None."""
    try:
        return os.readlink(path)
    except OSError:
        return None


def keep(paths, store):
    """Replace what store holds with the paths as they are now."""
    if os.path.lexists(store):
        shutil.rmtree(store)
    os.makedirs(store, mode=0o700)
    manifest = []
    for index, path in enumerate(paths):
        now = read(path)
        entry = {"path": path, **{k: v for k, v in now.items() if k != "content"}}
        if now["kind"] == "file":
            entry["copy"] = str(index)
            fd = os.open(os.path.join(store, entry["copy"]), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(now["content"])
        manifest.append(entry)
    with open(os.path.join(store, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f)
    return {entry["path"]: entry["kind"] for entry in manifest}


def wanted(entry, store):
    """What a manifest entry says the path was, in read()'s shape."""
    if entry["kind"] != "file":
        return {k: v for k, v in entry.items() if k != "path"}
    with open(os.path.join(store, entry["copy"]), "rb") as f:
        content = f.read()
    return {"kind": "file", "content": content, "mode": entry["mode"], "uid": entry["uid"], "gid": entry["gid"]}


def put_back(path, want):
    """Make path what want describes; a file or link appears whole, by rename."""
    directory = os.path.dirname(path)
    if want["kind"] == "absent":
        os.unlink(path)
        return
    if want["kind"] == "link":
        # symlink() creates the name or fails: a random name nobody holds.
        tmp = os.path.join(directory, ".wsgi-stack-" + secrets.token_hex(8))
        os.symlink(want["target"], tmp)
        os.rename(tmp, path)
        return
    fd, tmp = tempfile.mkstemp(prefix=".wsgi-stack-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(want["content"])
            f.flush()
            os.fchown(f.fileno(), want["uid"], want["gid"])
            os.fchmod(f.fileno(), want["mode"])
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def restore(paths, store, check_mode):
    """The paths that differ from what was kept, put back unless check_mode."""
    try:
        with open(os.path.join(store, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise Refused(f"nothing was kept in {store}") from None
    kept = {entry["path"]: entry for entry in manifest}
    missing = [path for path in paths if path not in kept]
    if missing:
        raise Refused(f"not kept in {store}: {', '.join(missing)}")
    restored = []
    for path in paths:
        want = wanted(kept[path], store)
        if read(path) != want:
            restored.append(path)
            if not check_mode:
                put_back(path, want)
    return restored


def main():
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "required": True},
            "store": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["kept", "restored"], "required": True},
            "links": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    paths, store = module.params["paths"], module.params["store"]
    relative = [path for path in paths + [store] if not os.path.isabs(path)]
    if relative:
        module.fail_json(msg=f"paths must be absolute: {', '.join(relative)}")
    links = {path: link_target(path) for path in module.params["links"]}
    try:
        if module.params["state"] == "kept":
            if module.check_mode:
                module.exit_json(changed=False, links=links)
            module.exit_json(changed=False, kept=keep(paths, store), links=links)
        restored = restore(paths, store, module.check_mode)
    except (Refused, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=bool(restored), restored=restored, links=links)


if __name__ == "__main__":
    main()
