"""The programs that ask for an application's health path: the candidate's
(roles/gunicorn/files/ask-socket.py, over its unix socket, as nginx would)
and the deploy's check through nginx (playbooks/files/ask-https.py), run as
the roles run them: python3 -I -c <the file's text>."""

import http.server
import socketserver
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ASK_SOCKET = ROOT / "roles" / "gunicorn" / "files" / "ask-socket.py"


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the name http.server calls)
        status = 200 if self.path == "/health" else 503
        body = (f"{self.headers['Host']} {self.headers['X-Forwarded-Proto']} "
                f"{self.headers['X-Forwarded-For']} {'x' * 400}").encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def unix_server(tmp_path):
    path = str(tmp_path / "app.sock")
    # BaseHTTPRequestHandler wants a client address; a unix socket has none.
    handler = type("UnixHandler", (Handler,), {"address_string": lambda self: "unix"})
    server = UnixHTTPServer(path, handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield path
    server.shutdown()
    server.server_close()


def ask(program, *args):
    return subprocess.run([sys.executable, "-I", "-c", program.read_text(), *args],
                          capture_output=True, text=True, check=True, timeout=30).stdout.splitlines()


def test_the_candidate_is_asked_as_nginx_asks_and_its_status_comes_last(unix_server):
    *body, status = ask(ASK_SOCKET, unix_server, "hello.test", "/health")
    assert status == "200"
    assert body[0].startswith("hello.test https 127.0.0.1 ")
    assert len("\n".join(body)) == 300


def test_another_status_is_reported_with_the_start_of_the_answer(unix_server):
    *body, status = ask(ASK_SOCKET, unix_server, "hello.test", "/missing")
    assert status == "503" and body


def test_a_socket_that_does_not_answer_yet_reports_000(tmp_path):
    assert ask(ASK_SOCKET, str(tmp_path / "none.sock"), "hello.test", "/health") == ["000"]


ASK_HTTPS = ROOT / "playbooks" / "files" / "ask-https.py"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An HTTPS server on a free loopback port for hello.test, with a
    certificate of its own (the CA file a client needs)."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", d / "key.pem", "-out", d / "cert.pem", "-days", "1", "-subj", "/CN=hello.test",
                    "-addext", "subjectAltName=DNS:hello.test"], check=True, capture_output=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(d / "cert.pem", d / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield str(server.server_address[1]), str(d / "cert.pem")
    server.shutdown()


def ask_https(*args):
    return subprocess.run([sys.executable, "-I", "-c", ASK_HTTPS.read_text(), *args],
                          capture_output=True, text=True, check=False, timeout=30)


def test_the_deploy_asks_nginx_by_name_with_the_certificate_verified(tls_server):
    port, ca = tls_server
    done = ask_https("hello.test", "/health", ca, "False", port)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "200"
    assert done.stdout.startswith(f"hello.test:{port} None None ")


def test_a_certificate_for_another_name_fails_unless_told_to_trust_anything(tls_server):
    port, ca = tls_server
    wrong = ask_https("other.test", "/health", ca, "False", port)
    assert wrong.returncode != 0 and "certificate" in wrong.stderr.lower()
    insecure = ask_https("other.test", "/health", "", "True", port)
    assert insecure.returncode == 0 and insecure.stdout.splitlines()[-1] == "200"


def test_the_deploy_asks_at_the_address_nginx_listens_on(tls_server):
    port, ca = tls_server
    there = ask_https("hello.test", "/health", ca, "False", port, "127.0.0.1")
    assert there.returncode == 0 and there.stdout.splitlines()[-1] == "200", there.stderr
    # Nothing listens on that port at another loopback address.
    elsewhere = ask_https("hello.test", "/health", ca, "False", port, "127.0.0.2")
    assert elsewhere.returncode != 0 and "refused" in elsewhere.stderr.lower()
