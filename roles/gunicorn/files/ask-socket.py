# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ask a Gunicorn unix socket for a path as nginx would, as
python3 -I -c "$(cat ask-socket.py)" SOCKET HOST PATH

Prints up to 300 characters of the answer, then its status; 000 when
nothing answers yet. Run by root with the host's python3, never the
release's (files/candidate-check.sh).
"""

import http.client
import socket
import sys


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, host, timeout=10):
        super().__init__(host, timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def ask(path, host, url):
    try:
        conn = UnixConnection(path, host)
        conn.request("GET", url, headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1",
                                          "X-Forwarded-Host": host})
        answer = conn.getresponse()
        return answer.read(300).decode(errors="replace"), answer.status
    except (OSError, http.client.HTTPException):
        return None, 0


if __name__ == "__main__":
    body, status = ask(*sys.argv[1:4])
    if body is not None:
        print(body)
    print(f"{status:03d}")
