# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When what a service reads last changed: the modules that restart services
(service_refresh, app_units) compare it with when the service started."""

from __future__ import annotations

import os

# Start times have the kernel's tick (10 ms) and file times the coarse
# clock: a file changed this close to a start may not have been read.
MARGIN = 0.1


def newest_change(paths):
    """The latest modification time among the paths that exist (0 if none),
    links not followed."""
    times = []
    for path in paths:
        try:
            times.append(os.lstat(path).st_mtime)
        except FileNotFoundError:
            continue
    return max(times, default=0.0)
