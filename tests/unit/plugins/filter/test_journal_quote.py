"""What a failed deploy quotes of the service's journal."""

from ansible_collections.wsgi.stack.plugins.filter.journal_quote import journal_quote

TRACEBACK = [
    "hello.service: Starting gunicorn",
    "Traceback (most recent call last):",
    '  File "/srv/hello/releases/abc/hello/__init__.py", line 3, in <module>',
    "ModuleNotFoundError: No module named 'flask_sqlalchemy'",
    "[ERROR] Worker (pid:12) exited with code 3",
    "Reason: Worker failed to boot.",
    "hello.service: Failed with result 'exit-code'.",
]


def test_a_restarting_service_is_quoted_by_its_exception_and_last_reasons_each_once():
    quote = journal_quote(TRACEBACK * 4).split(" | ")
    assert quote[0] == "ModuleNotFoundError: No module named 'flask_sqlalchemy'"
    assert sorted(quote[1:]) == ["Reason: Worker failed to boot.", "hello.service: Failed with result 'exit-code'."]


def test_without_a_decisive_line_the_last_twelve_are_quoted():
    lines = [f"line {n}" for n in range(20)]
    assert journal_quote(lines).split(" | ") == lines[-12:]


def test_what_systemd_ignores_is_no_cause():
    lines = ["Failed to set up loopback device, ignoring: Operation not permitted", "line"]
    assert journal_quote(lines) == "line"


def test_secrets_of_six_characters_or_more_are_masked_longest_first():
    lines = ["connecting to postgres://app:hunter2hunter2@db/app", "value abc and hunter2"]
    quote = journal_quote(lines, ["hunter2", "hunter2hunter2", "abc"])
    assert "hunter2" not in quote
    assert "postgres://app:********@db/app" in quote
    assert "abc" in quote


def test_nothing_read_quotes_nothing():
    assert journal_quote([]) == ""
