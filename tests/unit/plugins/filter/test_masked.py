"""The lines logs.yml shows of an application's journal."""

from ansible_collections.wsgi.stack.plugins.filter.masked import masked


def test_every_secret_is_masked_on_every_line_and_short_values_are_left():
    lines = ["key=s3cr3t-value started", "db postgres://app:hunter22@db/app", "debug=1"]
    assert masked(lines, ["s3cr3t-value", "hunter22", "1"]) == [
        "key=******** started", "db postgres://app:********@db/app", "debug=1"]


def test_no_lines_give_no_lines():
    assert masked(None, ["s3cr3t-value"]) == []
