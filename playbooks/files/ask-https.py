# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ask this server's nginx for a URL as a client would, as
python3 -I -c "$(cat ask-https.py)" NAME PATH CAFILE INSECURE [PORT [ADDRESS]]

Connects to ADDRESS (default 127.0.0.1; nginx_listen_address where nginx
listens there only) on PORT (default 443) with NAME as SNI and Host and
verifies the certificate against CAFILE, or the system's CA store when it
is empty; INSECURE "True" verifies nothing. Prints up to 300 characters of
the answer, then its status; a connection or TLS failure ends it with the
error on standard error.
"""

import http.client
import socket
import ssl
import sys


def context_for(cafile, insecure):
    context = ssl.create_default_context(cafile=cafile or None)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class LocalConnection(http.client.HTTPSConnection):
    """HTTPS to this server, whatever the name resolves to."""

    def __init__(self, name, port, context, address):
        super().__init__(name, port, timeout=10, context=context)
        self.tls = context
        self.address = address

    def connect(self):
        self.sock = self.tls.wrap_socket(socket.create_connection((self.address, self.port), self.timeout),
                                         server_hostname=self.host)


def main(name, path, cafile, insecure, port="443", address="127.0.0.1"):
    try:
        conn = LocalConnection(name, int(port), context_for(cafile, insecure == "True"), address or "127.0.0.1")
        conn.request("GET", path)
        answer = conn.getresponse()
        print(answer.read(300).decode(errors="replace"))
        print(answer.status)
    except (OSError, http.client.HTTPException) as exc:
        sys.exit(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main(*sys.argv[1:7])
