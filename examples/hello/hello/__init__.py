"""Example WSGI application for wsgi.stack: what a small Flask app needs in production.

- configuration from the environment (SECRET_KEY is required),
- an instance folder for data that outlives releases (an SQLite database),
- a health endpoint that reports which release is serving, one that shows what
  the app sees of the client behind the proxy, and a slow one for benchmarks,
- a CLI command that initialises the database (run once, by a deploy hook).
"""

import os
import sqlite3
import time
from pathlib import Path

import click
from flask import Flask, current_app, g, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix


def _release():
    # The deploy writes the release id to REVISION at the release's root,
    # which is the working directory of the service and of the hooks.
    for candidate in (Path.cwd() / "REVISION", Path(__file__).resolve().parent.parent / "REVISION"):
        if candidate.is_file():
            return candidate.read_text().strip()
    return "unknown"


def _db():
    if "db" not in g:
        # Concurrent writers wait for the lock rather than fail at once.
        g.db = sqlite3.connect(Path(current_app.instance_path) / "hello.sqlite", timeout=30)
    return g.db


def _upgrade(path):
    """Add the request_id column to a database made by an earlier version."""
    if not path.is_file():
        return
    with sqlite3.connect(path, timeout=30) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(visits)")]
        if columns and "request_id" not in columns:
            try:
                db.execute("ALTER TABLE visits ADD COLUMN request_id TEXT")
            except sqlite3.OperationalError:
                pass  # another worker added it first


def create_app():
    app = Flask(__name__, instance_path=os.environ.get("HELLO_INSTANCE_PATH") or None,
                instance_relative_config=True)
    app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    app.config["GREETING"] = os.environ.get("HELLO_GREETING", "Hello")
    release = _release()
    _upgrade(Path(app.instance_path) / "hello.sqlite")
    # Behind exactly one proxy (nginx): trust its X-Forwarded-For, -Proto and
    # -Host, so the app sees the client's address, https and the real name.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    @app.teardown_appcontext
    def close_db(_exc):
        db = g.pop("db", None)
        if db is not None:
            db.close()

    @app.get("/")
    def index():
        return f"{app.config['GREETING']} from release {release}\n"

    @app.get("/health")
    def health():
        return jsonify(status="ok", release=release)

    @app.get("/whoami")
    def whoami():
        return jsonify(client=request.remote_addr, scheme=request.scheme, host=request.host,
                       request_id=request.headers.get("X-Request-ID"))

    @app.get("/slow")
    def slow():
        # Stands for an I/O-bound view (a database or API call of 50 ms):
        # the case that separates worker classes in scripts/bench-workers.
        time.sleep(0.05)
        return "done\n"

    @app.post("/visits")
    def add_visit():
        db = _db()
        # The id nginx gave the request: a write can be matched with its
        # line in nginx's access log.
        db.execute("INSERT INTO visits (request_id) VALUES (?)", (request.headers.get("X-Request-ID"),))
        db.commit()
        return jsonify(visits=db.execute("SELECT COUNT(*) FROM visits").fetchone()[0])

    @app.cli.command("init-db")
    def init_db():
        """Create the database, dropping any existing data."""
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        db = _db()
        # Write-ahead logging: readers and a writer do not block each other.
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript("DROP TABLE IF EXISTS visits; CREATE TABLE visits (id INTEGER PRIMARY KEY, request_id TEXT);")
        db.commit()
        click.echo(f"initialised {Path(app.instance_path) / 'hello.sqlite'}")

    return app
