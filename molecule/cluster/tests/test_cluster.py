"""Many servers: a balancer (HAProxy) in front of three app servers, as
deploy.yml sets them up for an inventory with wsgi_balancers.

The tests run on the balancer (molecule.yml's verifier hosts) and reach the
app servers through Docker. In file order: what the converge made (spread,
the client's address, what an app server refuses, the once-per-deploy hook),
then check mode, then a broken release under load (it stops at the first
server), a drain that times out (it stops before any switch), then a good
code change under load (it rolls over all three and puts the drained
server back), then a code-only deploy (--tags app).
"""

import json
import shlex
import shutil
import socket
import time
import uuid
from pathlib import Path

import pytest
import testinfra

from conftest import visits, wait_for

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "hello"
APP_SERVERS = ("web1", "web2", "web3")
# Through the balancer: its CA, its address on the edge seen from itself.
MIXED = ("--url", "https://hello.test/health", "--resolve", "127.0.0.1",
         "--cafile", "/etc/ssl/wsgi-stack/ca/ca.pem", "--post-every", "3")
CLIENTS = 64
# Each client at most one request every two seconds: 32 a second reach
# every moment of a rollout without taking the CPUs from the deploy.
PACE = 2.0
CURL = "curl -sS --max-time 10 --cacert /etc/ssl/wsgi-stack/ca/ca.pem"


def server_name(host, which):
    return host.backend.get_hostname().replace("-lb-", f"-{which}-")


@pytest.fixture(scope="module")
def servers(host):
    return {which: testinfra.get_host(f"docker://{server_name(host, which)}") for which in APP_SERVERS}


def live(server):
    return Path(server.file("/srv/hello/current").linked_to).name


def servers_stats(host):
    """The balancer's rows of the backend hello's servers, from its admin socket."""
    script = ("import socket; s = socket.socket(socket.AF_UNIX); s.connect('/run/haproxy/admin.sock'); "
              "s.sendall(b'show stat\\n'); print(s.makefile().read())")
    out = host.check_output(f"python3 -c \"{script}\"")
    rows = [line.split(",") for line in out.splitlines() if line.startswith("hello,")]
    return [row for row in rows if row[1] != "BACKEND"]


def states(host):
    """Each app server's state in the balancer (UP, MAINT, DRAIN ...)."""
    return {row[1]: row[17] for row in servers_stats(host)}


def all_serving(host):
    """Every app server in the balancer and up ("UP 1/2": up, one check of
    the two that take it out failed, as a check under a loaded CPU can)."""
    return all(state.startswith("UP") for state in states(host).values())


def busy(host):
    """Requests the balancer has on the app servers now."""
    return sum(int(row[4]) for row in servers_stats(host))


def access_lines(server):
    return int(server.check_output("wc -l < /var/log/nginx/hello.access.log"))


def total_visits(servers):
    return sum(visits(server) for server in servers.values())


def edge_address(server):
    return server.check_output("hostname -I").split()[0]


def changed_source(tmp_path, breaks=False):
    """The example app with a change of code; `breaks`: a release that answers
    its own check over the socket but fails through nginx (stands for a
    ProxyFix or ALLOWED_HOSTS mistake: only the proxy chain shows it)."""
    source = tmp_path / "hello"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__"))
    init = source / "hello" / "__init__.py"
    code = init.read_text() + f"\n# release {uuid.uuid4()}\n"
    if breaks:
        code = code.replace('        return jsonify(status="ok", release=release)',
                            '        if request.remote_addr != "127.0.0.1":\n'
                            '            return jsonify(status="broken"), 503\n'
                            '        return jsonify(status="ok", release=release)')
        assert "broken" in code
    init.write_text(code)
    return source


def test_the_balancer_spreads_requests_over_every_app_server(host, servers):
    before = {which: access_lines(server) for which, server in servers.items()}
    for _request in range(30):
        host.check_output(f"{CURL} --resolve hello.test:443:127.0.0.1 https://hello.test/")
    served = {which: access_lines(server) - before[which] for which, server in servers.items()}
    assert all(count >= 5 for count in served.values()), served
    assert sum(served.values()) >= 30, served
    # One release id for the whole run, on every server.
    assert len({live(server) for server in servers.values()}) == 1
    assert all_serving(host), states(host)


def test_http_redirects_and_an_unknown_name_is_misdirected(host):
    redirect = host.check_output("curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "
                                 "--resolve hello.test:80:127.0.0.1 http://hello.test/a?b=1")
    assert redirect == "301 https://hello.test/a?b=1"
    unknown = host.check_output("curl -sS -k -o /dev/null -w '%{http_code}' "
                                "--resolve other.test:443:127.0.0.1 https://other.test/")
    assert unknown == "421"


def test_the_app_sees_the_client_address_and_scheme_through_both_proxies(host, servers):
    client = servers["web2"]
    lb = edge_address(host)
    answer = json.loads(client.check_output(
        f"curl -sS --max-time 10 -k -H 'X-Forwarded-For: 6.6.6.6' --resolve hello.test:443:{lb} https://hello.test/whoami"))
    # What the client sent as X-Forwarded-For is dropped by the balancer.
    assert answer["client"] == edge_address(client) and answer["scheme"] == "https", answer
    logged = {which: server.check_output(f"grep -c '^{edge_address(client)} ' /var/log/nginx/hello.access.log || true")
              for which, server in servers.items()}
    assert sum(int(count) for count in logged.values()) >= 1, logged


def test_an_app_server_answers_only_the_balancer_on_the_private_network(host, servers):
    web1, web2 = servers["web1"], servers["web2"]
    # Nothing of the app server listens on the edge.
    for port in (80, 443):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((edge_address(web1), port), timeout=5).close()
    refused = host.run(f"curl -sS -k --max-time 5 --resolve hello.test:443:{edge_address(web1)} https://hello.test/health")
    assert refused.rc == 7, refused.stderr
    # On the private network, another app server is not a balancer: 403.
    other = web2.check_output("curl -sS -k -o /dev/null -w '%{http_code}' --max-time 5 "
                              "--resolve hello.test:443:10.231.99.11 https://hello.test/health")
    assert other == "403"
    # The balancer is.
    direct = host.check_output("curl -sS -k --max-time 5 --resolve hello.test:443:10.231.99.11 https://hello.test/health")
    assert json.loads(direct)["status"] == "ok"


def test_a_hook_marked_once_ran_on_one_server_only(servers):
    logs = {which: server.file("/srv/hello/shared/once.log") for which, server in servers.items()}
    assert logs["web1"].exists and logs["web1"].content_string.split() == [live(servers["web1"])]
    assert not logs["web2"].exists and not logs["web3"].exists


def test_a_one_off_command_runs_on_the_first_server_unless_every_one_is_asked_for(servers, ansible_playbook):
    """playbooks/run.yml: a migration of a shared database runs once, on
    web1; -e wsgi_run_everywhere=true runs it on each app server."""
    mark = f"run-{uuid.uuid4().hex[:8]}"
    command = ["sh", "-c", f"echo {mark} >> instance/one-off.log"]
    run = ansible_playbook("../../playbooks/run.yml", extra_vars={"wsgi_only": "hello", "wsgi_command": command})
    assert run.rc == 0, run.output[-3000:]
    ran = {which for which, server in servers.items()
           if mark in server.run("cat /srv/hello/shared/instance/one-off.log").stdout}
    assert ran == {"web1"}
    run = ansible_playbook("../../playbooks/run.yml", extra_vars={
        "wsgi_only": "hello", "wsgi_command": command, "wsgi_run_everywhere": True})
    assert run.rc == 0, run.output[-3000:]
    counts = {which: server.check_output("cat /srv/hello/shared/instance/one-off.log").split().count(mark)
              for which, server in servers.items()}
    assert counts == {"web1": 2, "web2": 1, "web3": 1}


def test_check_mode_on_the_converged_cluster_reports_no_change_and_no_secret(host, servers, ansible_playbook):
    secret = servers["web1"].check_output("sed -n 's/^SECRET_KEY=//p' /etc/hello/env").strip("'\"")
    assert len(secret) >= 16
    run = ansible_playbook("converge.yml", "--check", "--diff")
    assert run.rc == 0, run.output
    assert run.changed() == 0, run.recap()
    assert secret not in run.output
    assert "keeps release" in run.output and "would drain" not in run.output


def test_check_mode_plans_the_rollout_and_touches_nothing(host, servers, ansible_playbook, tmp_path):
    source = changed_source(tmp_path)
    releases = {which: live(server) for which, server in servers.items()}
    run = ansible_playbook("converge.yml", "--check", "--diff",
                           extra_vars={"app_source": {"type": "directory", "path": str(source)}})
    assert run.rc == 0, run.output
    for which in APP_SERVERS:
        assert f"would drain {server_name(host, which)} on {host.backend.get_hostname()}" in run.output
    assert {which: live(server) for which, server in servers.items()} == releases
    assert all_serving(host), states(host)


def assert_no_loss(load, written):
    assert load["failed"] == 0, load
    posts = load["methods"]["POST"]["ok"]
    assert posts > 30, load
    assert written == posts, (written, load)


def test_a_broken_release_stops_at_the_first_server_and_fails_no_request(
        host, servers, ansible_playbook, http_load, tmp_path, measured):
    source = changed_source(tmp_path, breaks=True)
    old = {which: live(server) for which, server in servers.items()}
    rows = total_visits(servers)
    with http_load(*MIXED, user="root", concurrency=CLIENTS, interval=PACE, max_seconds=600) as load:
        run = ansible_playbook("converge.yml", extra_vars={"app_source": {"type": "directory", "path": str(source)}})
        time.sleep(PACE + 1)
    written = total_visits(servers) - rows
    measured("cluster: broken release under mixed load", f"{load['failed']} failed of {load['ok'] + load['failed']}, "
             f"POST {load['methods']['POST']['ok']} ok, {written} rows written")
    assert run.rc != 0
    web1 = server_name(host, "web1")
    # The first server was rolled back and stays out; the others were not reached.
    assert {which: live(server) for which, server in servers.items()} == old
    assert states(host)[web1] == "MAINT", states(host)
    assert f"{web1}/hello" in run.output and "The rollout stopped" in run.output
    assert f"{old['web2']} on {server_name(host, 'web2')}" in run.output
    assert f"{old['web1']} on {web1} (drained)" in run.output
    assert_no_loss(load, written)
    assert set(load["releases"]) == {old["web2"]}


# A POST whose body arrives a byte a second: its request stays on the
# server it went to (nginx there buffers the body) for as long as it runs,
# which must outlast the build play on a slow machine; the test kills it.
SLOW_POST = """
import socket, ssl, sys, time
seconds = int(sys.argv[1])
context = ssl.create_default_context(cafile="/etc/ssl/wsgi-stack/ca/ca.pem")
conn = context.wrap_socket(socket.create_connection(("127.0.0.1", 443)), server_hostname="hello.test")
conn.sendall(b"POST /visits HTTP/1.1\\r\\nHost: hello.test\\r\\nContent-Length: %d\\r\\n\\r\\n" % seconds)
for _ in range(seconds):
    conn.sendall(b"x")
    time.sleep(1)
"""


def test_a_drain_that_times_out_stops_the_rollout(host, servers, ansible_playbook, tmp_path):
    """web1 is still out since the broken release: its drain has nothing to
    wait for, it switches and comes back. web2 holds a request that does not
    end, its drain times out, and the rollout stops there: web2 keeps its
    release and stays draining, web3 is not reached."""
    assert states(host)[server_name(host, "web1")] == "MAINT"
    source = changed_source(tmp_path)
    old = {which: live(server) for which, server in servers.items()}
    # Slow requests on the two servers in the balancer (round robin).
    for _client in range(4):
        host.check_output(f"setsid -f python3 -c {shlex.quote(SLOW_POST)} 600 >/dev/null 2>&1 </dev/null")
    wait_for(lambda: busy(host) >= 4, 20, "four slow requests on the servers")
    try:
        run = ansible_playbook("converge.yml", extra_vars={"balancer_drain_timeout": 3,
                                                           "app_source": {"type": "directory", "path": str(source)}})
    finally:
        host.run("pkill -f 'POST /visits'")
    assert run.rc != 0
    web1, web2, web3 = (server_name(host, which) for which in APP_SERVERS)
    assert f"server hello/{web2} not status 'DRAIN'" in run.output, run.output[-3000:]
    now = {which: live(server) for which, server in servers.items()}
    assert now["web1"] != old["web1"] and (now["web2"], now["web3"]) == (old["web2"], old["web3"])
    assert (f"{now['web1']} on {web1}; {old['web2']} on {web2} (drained); {old['web3']} on {web3}."
            in " ".join(run.output.split())), run.output[-3000:]
    assert states(host)[web1].startswith("UP") and states(host)[web2] == "DRAIN", states(host)


def test_a_rolling_code_change_under_load_fails_no_request_and_loses_no_write(
        host, servers, ansible_playbook, http_load, tmp_path, measured):
    source = changed_source(tmp_path)
    old = {which: live(server) for which, server in servers.items()}
    rows = total_visits(servers)
    started = time.monotonic()
    with http_load(*MIXED, user="root", concurrency=CLIENTS, interval=PACE, max_seconds=600) as load:
        run = ansible_playbook("converge.yml", extra_vars={"app_source": {"type": "directory", "path": str(source)}})
        took = time.monotonic() - started
        time.sleep(PACE + 1)
    written = total_visits(servers) - rows
    new = {which: live(server) for which, server in servers.items()}
    measured("cluster: rolling code change over 3 app servers under mixed load",
             f"{load['failed']} failed of {load['ok'] + load['failed']} in {took:.0f} s, "
             f"POST {load['methods']['POST']['ok']} ok, {written} rows written, releases {load['releases']}")
    assert run.rc == 0, run.output
    assert len(set(new.values())) == 1 and set(new.values()) != set(old.values())
    release = set(new.values()).pop()
    assert release in load["releases"]
    # Every server serves it, asked directly on the private network.
    for address in ("10.231.99.11", "10.231.99.12", "10.231.99.13"):
        answer = host.check_output(f"curl -sS -k --max-time 5 --resolve hello.test:443:{address} https://hello.test/health")
        assert json.loads(answer)["release"] == release, (address, answer)
    # The server the broken release left out is back.
    assert all_serving(host), states(host)
    assert_no_loss(load, written)
    # One drain at a time: each server's switch went to its own batch.
    assert run.output.count("PLAY [Roll the new releases out behind the balancers]") == 3


def test_a_code_only_deploy_with_tags_app_rolls_out_too(host, servers, ansible_playbook, tmp_path):
    """--tags app deploys code only: the switch still waits for the rolling
    play, one drained server at a time."""
    source = changed_source(tmp_path)
    old = live(servers["web1"])
    run = ansible_playbook("converge.yml", "--tags", "app",
                           extra_vars={"app_source": {"type": "directory", "path": str(source)}})
    assert run.rc == 0, run.output
    assert run.output.count("TASK [wsgi.stack.balancer : Take the app server out of every balancer") == 3
    new = {live(server) for server in servers.values()}
    assert len(new) == 1 and old not in new
    assert all_serving(host), states(host)
