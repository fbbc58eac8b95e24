"""The gunicorn role's gthread accept shim (roles/gunicorn/files/wsgi_stack_gthread.py)
in a real Gunicorn, the toolchain's (requirements.txt): kept-alive clients
of a slow endpoint spread evenly over the workers, every request answered;
outside the range it was checked with, it logs why and changes nothing."""

import collections
import concurrent.futures
import http.client
import socket
import subprocess
import sys
import time
from pathlib import Path

import gunicorn
import pytest
import yaml

SHIM = Path(__file__).resolve().parents[3] / "roles" / "gunicorn" / "files" / "wsgi_stack_gthread.py"
APP = '''
import os, time
def app(environ, start_response):
    time.sleep(0.05)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
'''
CONFIG = '''
import importlib.util
worker_class = "gthread"
workers = 2
threads = 8
bind = "127.0.0.1:{port}"
control_socket_disable = True
def post_worker_init(worker):
    spec = importlib.util.spec_from_file_location("wsgi_stack_gthread", {shim!r})
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.post_worker_init(worker, {oldest!r}, {newest!r})
'''


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    def start(oldest, newest):
        port = free_port()
        (tmp_path / "app.py").write_text(APP)
        (tmp_path / "conf.py").write_text(CONFIG.format(port=port, shim=str(SHIM), oldest=oldest, newest=newest))
        log = open(tmp_path / "gunicorn.log", "w")
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "conf.py", "app:app"],
                                   cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                time.sleep(1)  # both workers booted
                return port, tmp_path / "gunicorn.log"
            except OSError:
                time.sleep(0.1)
        raise AssertionError((tmp_path / "gunicorn.log").read_text())

    started = []
    yield start
    for process in started:
        process.terminate()
        process.wait(30)


def kept_alive_load(port, clients=32, each=20):
    """Every client on one kept-alive connection: the pid of each answer."""
    def client(_unused):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        pids = []
        for _request in range(each):
            conn.request("GET", "/slow")
            answer = conn.getresponse()
            assert answer.status == 200
            pids.append(answer.read().decode())
        conn.close()
        return pids

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        return collections.Counter(pid for pids in pool.map(client, range(clients)) for pid in pids)


def test_the_toolchain_tests_the_roles_default_gunicorn():
    defaults = yaml.safe_load((SHIM.parents[3] / "roles" / "common" / "defaults" / "main.yml").read_text())
    assert gunicorn.__version__ == defaults["app_gunicorn_version"], "requirements.txt pins another Gunicorn"


def test_kept_alive_connections_spread_over_the_workers(server):
    port, log = server(gunicorn.__version__, gunicorn.__version__)
    served = kept_alive_load(port)
    assert sum(served.values()) == 32 * 20
    # 32 connections, 2 workers of 8 threads: each worker takes at most its
    # threads' worth of connections at a time, so the split is even.
    assert len(served) == 2 and max(served.values()) <= 0.6 * sum(served.values()), served
    assert "accept shim" not in log.read_text()


def test_a_version_outside_the_checked_range_runs_unpatched_and_says_so(server):
    port, log = server("1.0.0", "1.0.1")
    assert sum(kept_alive_load(port, clients=4, each=5).values()) == 20
    text = log.read_text()
    assert f"the gthread accept shim was checked with Gunicorn 1.0.0 to 1.0.1, not {gunicorn.__version__}" in text
    assert "Traceback" not in text
