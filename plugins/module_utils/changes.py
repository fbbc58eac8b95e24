# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When what a service reads last changed, and when its main process
started: the modules that restart services (service_refresh, app_units)
compare the two."""

from __future__ import annotations

import os
import time

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


def process_start(pid, proc="/proc"):
    """When process pid started, in seconds since the epoch."""
    with open(f"{proc}/{pid}/stat", encoding="utf-8") as f:
        # The command name, in parentheses, may hold spaces: fields count from its end.
        fields = f.read().rsplit(")", 1)[1].split()
    since_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME) + since_boot
