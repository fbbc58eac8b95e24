"""The deployed stack against Flask's development server, in one run on the
`make demo` container: the example app served by `flask run --with-threads`,
by Gunicorn alone (the deployed gunicorn.conf.py, on TCP), by the stack
(nginx over HTTPS to Gunicorn's socket), and a static file from each. wrk
runs inside the container (2 threads, 64 connections) on `/` (CPU-bound),
`/slow` (50 ms of waiting) and the stylesheet; memory is nginx's and
Gunicorn's resident set, idle and under the load on `/`.

Writes bench/results/<date>.json and docs/benchmarks.png, prints the tables
(markdown) that scripts/bench-report puts into docs/benchmarks.md, and checks
the targets, reporting a miss rather than failing. Not a test: the figures
depend on the machine.

  python3 scripts/bench-servers.py     (DURATION=8 seconds per load, CONNECTIONS=64)
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = "wsgi-stack-demo"
HOST = "hello.localhost"
DURATION = int(os.environ.get("DURATION", "8"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "64"))
SLOW_SECONDS = 0.05  # the example's /slow waits this long
STATIC = "/static/style.css"
RELEASE = "/srv/hello/current"
# The servers, each with the base URL wrk asks inside the container.
SERVERS = {
    "flask run (development server)": "http://127.0.0.1:5000",
    "Gunicorn alone (TCP)": "http://127.0.0.1:8000",
    # The image has no /etc/services: the URL gives the port.
    "stack (nginx TLS to Gunicorn)": f"https://{HOST}:443",
}
DEV, GUNICORN, STACK = SERVERS
PATHS = ["/", "/slow", STATIC]


def demo(*args, check=True, stdin=None):
    done = subprocess.run(["docker", "exec", "-i", DEMO, *args], capture_output=True, text=True, check=False,
                          input=stdin)
    if check and done.returncode != 0:
        sys.exit(f"error: {' '.join(args)} in {DEMO}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def say(text):
    print(f"==> {text}", file=sys.stderr, flush=True)


def transient(unit, port, *command):
    """Run command as the application's user, with its environment, in the
    live release, as a transient unit; wait until the port answers."""
    demo("systemctl", "stop", unit, check=False)
    demo("systemctl", "reset-failed", unit, check=False)
    demo("systemd-run", f"--unit={unit}", "--uid=hello", "--gid=hello", f"--working-directory={RELEASE}",
         "--property=EnvironmentFile=/etc/hello/env", f"--setenv=PATH={RELEASE}/.venv/bin:/usr/bin:/bin", *command)
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/health', timeout=5)"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if subprocess.run(["docker", "exec", DEMO, "python3", "-c", probe], capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.2)
    sys.exit(f"error: {unit} did not answer on port {port}: {demo('journalctl', '-u', unit, '-n', '20', check=False)}")


def milliseconds(value):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def wrk(url):
    """One load: requests/s, p50 and p99 (ms), errors (socket errors and
    answers other than 2xx or 3xx) and requests."""
    out = demo("wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--timeout", "10s", "--latency", url)
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1))
    requests = int(re.search(r"^\s+(\d+) requests in", out, re.M).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    p50 = milliseconds(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = milliseconds(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    return {"rps": round(rps), "p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "errors": errors,
            "requests": requests}


def rss_mib(unit_or_command):
    """Resident memory (MiB) of a service's processes, or of every process of a command name."""
    if unit_or_command.endswith(".service"):
        main = demo("systemctl", "show", "-P", "MainPID", unit_or_command).strip()
        pids = [main] + demo("pgrep", "-P", main, check=False).split()
    else:
        pids = demo("pgrep", "-x", unit_or_command, check=False).split()
    total = sum(int(demo("ps", "-o", "rss=", "-p", pid, check=False).strip() or 0) for pid in pids)
    return round(total / 1024, 1)


def memory():
    return {"nginx": rss_mib("nginx"), "gunicorn": rss_mib("hello.service")}


def setup():
    say("make demo (the stack, deployed from this checkout)")
    done = subprocess.run([str(ROOT / "scripts" / "demo")], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"error: make demo failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    demo("sh", "-c", "command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null")
    demo("sh", "-c", f"grep -q ' {HOST}$' /etc/hosts || echo '127.0.0.1 {HOST}' >>/etc/hosts")
    demo("cp", "/etc/ssl/wsgi-stack/ca/ca.pem", "/usr/local/share/ca-certificates/wsgi-stack-demo-ca.crt")
    demo("update-ca-certificates")


def versions():
    pip_show = demo(f"{RELEASE}/.venv/bin/python", "-c",
                    "import importlib.metadata as m; print(m.version('flask'), m.version('gunicorn'))").split()
    return {"flask": pip_show[0], "gunicorn": pip_show[1],
            "nginx": demo("sh", "-c", "nginx -v 2>&1").strip().split("/")[-1],
            "python": demo(f"{RELEASE}/.venv/bin/python", "-c", "import platform; print(platform.python_version())").strip(),
            "distro": demo("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME").strip()}


def measure():
    runs = {}
    mem = {"idle": memory()}
    transient("wsgi-stack-bench-dev", 5000, f"{RELEASE}/.venv/bin/flask", "--app", "hello:create_app()", "run", "--with-threads",
              "--host", "127.0.0.1", "--port", "5000")
    transient("wsgi-stack-bench-gunicorn", 8000, f"{RELEASE}/.venv/bin/gunicorn", "--config", "/etc/hello/gunicorn.conf.py",
              "--bind", "127.0.0.1:8000", "hello:create_app()")
    try:
        for server, base in SERVERS.items():
            for path in PATHS:
                say(f"{server}: {path}")
                if server == STACK and path == "/":
                    # Memory under load: sampled halfway through this run.
                    sample = {}
                    timer = threading.Timer(DURATION / 2, lambda: sample.update(memory()))
                    timer.start()
                    runs[(server, path)] = wrk(base + path)
                    timer.join()
                    mem["under load"] = sample
                else:
                    runs[(server, path)] = wrk(base + path)
    finally:
        demo("systemctl", "stop", "wsgi-stack-bench-dev", "wsgi-stack-bench-gunicorn", check=False)
    return runs, mem


def targets(runs):
    """The targets of the comparison: (what, target, value, met)."""
    ideal = CONNECTIONS / SLOW_SECONDS
    root = runs[(STACK, "/")]["rps"] / runs[(DEV, "/")]["rps"]
    slow = runs[(STACK, "/slow")]["rps"] / ideal
    static = runs[(STACK, STATIC)]["rps"] / runs[(DEV, STATIC)]["rps"]
    p99 = runs[(STACK, "/")]["p99_ms"]
    errors = sum(run["errors"] for (server, _path), run in runs.items() if server != DEV)
    return [
        ("stack / development server on `/`", ">= 3x", f"{root:.1f}x", root >= 3),
        (f"stack on `/slow` / the ideal ({CONNECTIONS} connections / {SLOW_SECONDS * 1000:.0f} ms = {ideal:.0f} req/s)",
         ">= 90%", f"{slow:.0%}", slow >= 0.9),
        ("stack p99 on `/`", "< 50 ms", f"{p99:.1f} ms", p99 < 50),
        ("nginx static / development server static", ">= 40x", f"{static:.1f}x", static >= 40),
        ("failed requests, Gunicorn and stack", "0", str(errors), errors == 0),
    ]


def chart(runs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PATHS), figsize=(12, 4))
    for ax, url in zip(axes, PATHS):
        values = [runs[(server, url)]["rps"] for server in SERVERS]
        bars = ax.bar(range(len(SERVERS)), values, color=["#b0b0b0", "#6a9fd4", "#2b6cb0"])
        ax.set_title(f"GET {url}")
        ax.set_xticks(range(len(SERVERS)), ["flask run", "Gunicorn", "stack"])
        ax.bar_label(bars, labels=[f"{v:,}" for v in values], fontsize=8)
        ax.set_ylabel("requests/s")
    fig.suptitle(f"Requests per second, wrk -t2 -c{CONNECTIONS} -d{DURATION}s, {os.cpu_count()} CPUs")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def headline(runs, today):
    """The README's first screen: the comparison, between its markers."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- headline: written by make bench -->", "<!-- end of headline -->"
    if start not in text or end not in text:
        sys.exit(f"error: README.md has no {start} ... {end} block")
    dev, stack = runs[(DEV, "/")], runs[(STACK, "/")]
    line = (f"Measured by `make bench` ({today}, {os.cpu_count()} CPUs, 64 connections): the stack serves"
            f" {stack['rps'] / dev['rps']:.1f}x the requests per second of Flask's development server on a"
            f" simple page ({stack['rps']:,} against {dev['rps']:,}, p99 {stack['p99_ms']:.0f} ms against"
            f" {dev['p99_ms']:.0f} ms), {runs[(STACK, '/slow')]['rps'] / runs[(DEV, '/slow')]['rps']:.1f}x on a"
            f" view that waits 50 ms, and {runs[(STACK, STATIC)]['rps'] / runs[(DEV, STATIC)]['rps']:.0f}x on a"
            f" static file ([docs/benchmarks.md](docs/benchmarks.md)).")
    before, rest = text.split(start, 1)
    readme.write_text(f"{before}{start}\n{line}\n{end}{rest.split(end, 1)[1]}")


def main():
    setup()
    runs, mem = measure()
    met = targets(runs)
    today = datetime.date.today().isoformat()
    result = {
        "date": today,
        "machine": {"cpus": os.cpu_count()},
        "versions": versions(),
        "load": {"tool": "wrk", "threads": 2, "connections": CONNECTIONS, "seconds": DURATION},
        "runs": [{"server": server, "path": path, **run} for (server, path), run in runs.items()],
        "memory_mib": mem,
        "targets": [{"what": what, "target": target, "value": value, "met": ok} for what, target, value, ok in met],
    }
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{today}.json").write_text(json.dumps(result, indent=2) + "\n")
    chart(runs, ROOT / "docs" / "benchmarks.png")
    headline(runs, today)
    say(f"wrote bench/results/{today}.json, docs/benchmarks.png and the README's headline")

    v = result["versions"]
    print(f"In the demo container ({v['distro']}, Python {v['python']}, Flask {v['flask']}, Gunicorn {v['gunicorn']},"
          f" nginx {v['nginx']}); the results file is `bench/results/{today}.json`.\n")
    print("![requests per second](benchmarks.png)\n")
    print("| server | path | req/s | p50 | p99 | errors |")
    print("|---|---|---:|---:|---:|---:|")
    for (server, path), run in runs.items():
        print(f"| {server} | `{path}` | {run['rps']:,} | {run['p50_ms']} ms | {run['p99_ms']} ms | {run['errors']} |")
    print("\n| target | wanted | measured | |")
    print("|---|---|---|---|")
    for what, target, value, ok in met:
        print(f"| {what} | {target} | {value} | {'met' if ok else '**missed**'} |")
    print("\n| memory (resident) | nginx | Gunicorn (master and workers) |")
    print("|---|---:|---:|")
    for state, sizes in mem.items():
        print(f"| {state} | {sizes.get('nginx', '?')} MiB | {sizes.get('gunicorn', '?')} MiB |")


if __name__ == "__main__":
    main()
