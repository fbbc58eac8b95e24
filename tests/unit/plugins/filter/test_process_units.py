"""The unit files and units of an application's processes and timers."""

from ansible_collections.wsgi.stack.plugins.filter.process_units import process_units
from ansible_collections.wsgi.stack.plugins.filter.systemd_argv import systemd_argv

WORKER = {"name": "worker", "command": ["rq", "worker"], "count": 2}
NIGHTLY = {"name": "nightly", "command": ["flask", "purge"], "on_calendar": "daily"}


def test_a_process_is_a_template_and_a_timer_a_pair():
    files = process_units("blog", [WORKER], [NIGHTLY])
    assert [f["unit"] for f in files] == ["blog-worker@.service", "blog-nightly.service", "blog-nightly.timer"]
    assert [f["job"]["kind"] for f in files] == ["process", "timer", "timer"]
    assert files[2]["template"].endswith("process.timer.j2") and files[1]["template"].endswith("process.service.j2")


def test_each_instance_of_a_process_and_each_timer_starts():
    assert process_units("blog", [WORKER, {"name": "mail", "command": ["m"]}], [NIGHTLY], enabled=True) == [
        "blog-worker@1.service", "blog-worker@2.service", "blog-mail@1.service", "blog-nightly.timer"]


def test_nothing_listed_is_no_unit():
    assert process_units("blog", [], []) == [] and process_units("blog", [], [], enabled=True) == []


def test_words_reach_the_process_as_given():
    assert systemd_argv(["celery", "-A", "proj", "worker"]) == '"celery" "-A" "proj" "worker"'
    # Specifiers, variables, quotes and backslashes are the command's, not systemd's.
    assert systemd_argv(["sh", "-c", 'echo "$HOME" 100% \\n']) == '"sh" "-c" "echo \\"$$HOME\\" 100%% \\\\n"'
