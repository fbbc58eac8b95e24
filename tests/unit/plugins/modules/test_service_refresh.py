"""service_refresh: a service is restarted or reloaded once, not again for files it already read."""

import os
import time

import pytest

from ansible_collections.wsgi.stack.plugins.module_utils.changes import newest_change
from ansible_collections.wsgi.stack.plugins.modules.service_refresh import decide, last_refresh

RUNNING = {"Id": "hello.service", "LoadState": "loaded", "ActiveState": "active", "MainPID": "42"}


def test_newest_change_reads_links_not_their_targets_and_skips_missing(tmp_path):
    target = tmp_path / "release"
    target.mkdir()
    link = tmp_path / "current"
    link.symlink_to(target)
    os.utime(target, (1000, 1000))
    os.utime(link, (2000, 2000), follow_symlinks=False)
    assert newest_change([str(link), str(target), str(tmp_path / "absent")]) == 2000
    assert newest_change([str(tmp_path / "absent")]) == 0


@pytest.mark.parametrize("state", ["restarted", "reloaded"])
def test_a_service_that_started_after_the_change_is_left_alone(state):
    act, reason = decide(state, RUNNING, changed=1000.0, refreshed=1005.0)
    assert not act and "after its files last changed" in reason


@pytest.mark.parametrize("refreshed", [900.0, 1000.0, 1000.05])
def test_a_service_older_than_the_change_or_too_close_to_tell_is_refreshed(refreshed):
    assert decide("reloaded", RUNNING, changed=1000.0, refreshed=refreshed)[0]


def test_an_uninstalled_unit_is_left_alone_and_a_stopped_one_only_restarted():
    assert decide("restarted", {"Id": "x.service", "LoadState": "not-found"}, 0, None) == (
        False, "x.service is not installed")
    stopped = {**RUNNING, "ActiveState": "inactive", "MainPID": "0"}
    assert decide("reloaded", stopped, 1000.0, None)[0] is False
    assert decide("restarted", stopped, 1000.0, None)[0] is True


def fake_proc(tmp_path, pid, started_ago):
    """A /proc/<pid>/stat whose start time is started_ago seconds before now."""
    ticks = os.sysconf("SC_CLK_TCK")
    since_boot = time.clock_gettime(time.CLOCK_BOOTTIME) - started_ago
    (tmp_path / "proc" / str(pid)).mkdir(parents=True)
    fields = ["S"] + ["0"] * 18 + [str(int(since_boot * ticks))] + ["0"] * 10
    (tmp_path / "proc" / str(pid) / "stat").write_text(f"{pid} (gunicorn: master [x]) " + " ".join(fields))
    return str(tmp_path / "proc")


def test_last_reload_is_the_start_or_a_later_reload_by_this_module(tmp_path):
    proc = fake_proc(tmp_path, 42, started_ago=60)
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    assert abs(last_refresh("hello.service", 42, "reloaded", str(stamps), proc) - (time.time() - 60)) < 1
    (stamps / "hello.service").write_text("42\n")
    assert abs(last_refresh("hello.service", 42, "reloaded", str(stamps), proc) - time.time()) < 1
    # A stamp from before the start (a restart since) does not count.
    os.utime(stamps / "hello.service", (time.time() - 120, time.time() - 120))
    assert abs(last_refresh("hello.service", 42, "reloaded", str(stamps), proc) - (time.time() - 60)) < 1


def test_a_reload_never_stands_in_for_a_restart(tmp_path):
    """gunicorn.conf.py and a new release change in one run: a HUP that ran
    first re-reads the configuration, not the release or the environment."""
    proc = fake_proc(tmp_path, 42, started_ago=60)
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    (stamps / "hello.service").write_text("42\n")
    started = last_refresh("hello.service", 42, "restarted", str(stamps), proc)
    assert abs(started - (time.time() - 60)) < 1
    assert decide("restarted", RUNNING, changed=time.time() - 5, refreshed=started)[0]
