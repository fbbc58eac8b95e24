#!/usr/bin/env python
"""Write the source trees of the apps scenario: small applications shaped
like the ones users deploy (each build backend, src/ and flat layouts, a bare
requirements file, Flask factories and module-level apps, Flask-Migrate,
Django), all keeping notes in a database so that a test can write and read.

    shapes.py OUT_DIR GENERATION

GENERATION (1, 2, ...) is the code's version: each application reports it
and puts it in its stylesheet, so a redeploy of generation 2 is a code change
of every application. Generation 2 of `hatch` adds a migration, and
generation 3 one that fails.
"""

import shutil
import sys
import textwrap
from pathlib import Path

# The Gunicorn that `plain` pins itself: supported, and not the roles' default.
PINNED_GUNICORN = "27.0.0"

# The notes application in Flask: `{factory}` chooses between an app factory
# that takes the configuration's name and a module-level `app`; `{init_db}`
# between a table the `init-db` command creates (it empties the table: it
# must run once only) and one created on first use.
FLASK_APP = '''\
"""{name}: notes in SQLite, kept in Flask's instance folder."""

import hashlib
import os
import sqlite3
import time
from pathlib import Path

from flask import Flask, current_app, g, jsonify, request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

VERSION = "{generation}"
SCHEMA = "CREATE TABLE {exists}notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"


def _db():
    if "db" not in g:
        g.db = sqlite3.connect(Path(current_app.instance_path) / "notes.sqlite", timeout=30)
        if {lazy}:
            g.db.execute(SCHEMA)
    return g.db


def {maker}({params}):
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    @app.teardown_appcontext
    def close(_exc):
        db = g.pop("db", None)
        if db is not None:
            db.close()

    @app.get("/health")
    def health():
        return jsonify(status="ok", version=VERSION, config={config})

    @app.get("/notes")
    def notes():
        rows = _db().execute("SELECT text FROM notes ORDER BY id").fetchall()
        return jsonify(notes=[r[0] for r in rows], version=VERSION, instance=app.instance_path,
                       static=url_for("static", filename="app.css"))

    @app.post("/notes")
    def add_note():
        with _db() as db:
            db.execute("INSERT INTO notes (text) VALUES (?)", (request.form["text"],))
        return jsonify(added=request.form["text"]), 201

    @app.post("/upload")
    def upload():
        digest, size = hashlib.sha256(), 0
        while chunk := request.stream.read(65536):
            digest.update(chunk)
            size += len(chunk)
        return jsonify(size=size, sha256=digest.hexdigest())

    @app.get("/slow")
    def slow():
        time.sleep(float(request.args.get("seconds", "1")))
        return jsonify(slept=request.args.get("seconds", "1"))

    @app.cli.command("init-db")
    def init_db():
        """Create the notes table, emptying it if it exists."""
        with _db() as db:
            db.execute("DROP TABLE IF EXISTS notes")
            db.execute(SCHEMA)

    return app
{module_app}'''

# Flask-SQLAlchemy and Flask-Migrate: the schema is Alembic's, upgraded by
# `flask db upgrade` on every deploy.
MIGRATE_APP = '''\
"""{name}: notes through Flask-SQLAlchemy, schema by Flask-Migrate."""

import os
from pathlib import Path

from flask import Flask, jsonify, request, url_for
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from werkzeug.middleware.proxy_fix import ProxyFix

VERSION = "{generation}"
db = SQLAlchemy()


class Note(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.String(200), nullable=False)
{extra_column}

def create_app():
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{{Path(app.instance_path) / 'notes.sqlite'}}"
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    db.init_app(app)
    Migrate(app, db)

    @app.get("/health")
    def health():
        return jsonify(status="ok", version=VERSION)

    @app.get("/notes")
    def notes():
        return jsonify(notes=[n.text for n in db.session.scalars(db.select(Note).order_by(Note.id))],
                       version=VERSION, instance=app.instance_path,
                       static=url_for("static", filename="app.css"))

    @app.post("/notes")
    def add_note():
        db.session.add(Note(text=request.form["text"]))
        db.session.commit()
        return jsonify(added=request.form["text"]), 201

    return app
'''

ALEMBIC_ENV = '''\
"""Alembic's environment for Flask-Migrate: the application's engine and models."""

from alembic import context
from flask import current_app

database = current_app.extensions["migrate"].db
with database.engine.connect() as connection:
    context.configure(connection=connection, target_metadata=database.metadata)
    with context.begin_transaction():
        context.run_migrations()
'''

MIGRATIONS = {
    "0001_notes.py": '''\
"""Create the notes table."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.create_table("note", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("text", sa.String(200), nullable=False))


def downgrade():
    op.drop_table("note")
''',
    # Backward compatible: a column with a default, which generation 1
    # (still live while the hook runs, and after a rollback) never names.
    "0002_stars.py": '''\
"""Add stars to notes, 0 for the existing ones."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    op.add_column("note", sa.Column("stars", sa.Integer, nullable=False, server_default="0"))


def downgrade():
    op.drop_column("note", "stars")
''',
    # A mistake: the column exists. The deploy must stop before the switch.
    "0003_text_again.py": '''\
"""Add a column that the table already has."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade():
    op.add_column("note", sa.Column("text", sa.String(200)))


def downgrade():
    pass
''',
}

DJANGO = {
    "manage.py": '''\
#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notesite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
''',
    "notesite/__init__.py": "",
    # Secrets and names from the environment file; empty while the release is
    # built (collectstatic needs none of them).
    "notesite/settings.py": '''\
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("SECRET_KEY", "")
DEBUG = False
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "").split()
CSRF_TRUSTED_ORIGINS = os.environ.get("CSRF_TRUSTED_ORIGINS", "").split()
# nginx terminates TLS and says so.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_COOKIE_SECURE = True
INSTALLED_APPS = ["django.contrib.staticfiles", "notes"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "notesite.urls"
WSGI_APPLICATION = "notesite.wsgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "data" / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
''',
    "notesite/urls.py": '''\
from django.urls import path

from notes import views

urlpatterns = [path("health", views.health), path("notes", views.notes)]
''',
    "notesite/wsgi.py": '''\
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notesite.settings")
application = get_wsgi_application()
''',
    "notes/__init__.py": "",
    "notes/models.py": '''\
from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=200)
''',
    "notes/migrations/__init__.py": "",
    "notes/migrations/0001_initial.py": '''\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Note",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("text", models.CharField(max_length=200)),
            ],
        ),
    ]
''',
    "notes/views.py": '''\
from django.http import JsonResponse
from django.templatetags.static import static
from django.views.decorators.csrf import ensure_csrf_cookie

from .models import Note

VERSION = "{generation}"


def health(request):
    return JsonResponse({{"status": "ok", "version": VERSION, "secure": request.is_secure()}})


@ensure_csrf_cookie
def notes(request):
    if request.method == "POST":
        Note.objects.create(text=request.POST["text"])
        return JsonResponse({{"added": request.POST["text"]}}, status=201)
    return JsonResponse({{"notes": list(Note.objects.order_by("id").values_list("text", flat=True)),
                         "version": VERSION, "static": static("notes/app.css")}})
''',
    "requirements.txt": "Django>=4.2,<7\n",
}

CSS = "/* {name}, generation {generation} */\nbody {{ font-family: sans-serif; }}\n"
# Build backends: what each project's pyproject.toml declares.
BACKEND = {
    "setuptools": '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
                  '[tool.setuptools.package-data]\n"*" = ["static/*"]\n',
    "flit_core": '[build-system]\nrequires = ["flit_core>=3.9,<4"]\nbuild-backend = "flit_core.buildapi"\n',
    "hatchling": '[build-system]\nrequires = ["hatchling>=1.18"]\nbuild-backend = "hatchling.build"\n',
    "pdm-backend": '[build-system]\nrequires = ["pdm-backend>=2.1"]\nbuild-backend = "pdm.backend"\n',
    "poetry-core": '[build-system]\nrequires = ["poetry-core>=2.0"]\nbuild-backend = "poetry.core.masonry.api"\n',
}


def pyproject(package, backend, dependencies, generation):
    deps = ", ".join(f'"{d}"' for d in dependencies)
    return (f'[project]\nname = "{package.replace("_", "-")}"\nversion = "1.{generation}.0"\n'
            f'description = "Notes, a test application of wsgi.stack"\nrequires-python = ">=3.9"\n'
            f"dependencies = [{deps}]\n\n{BACKEND[backend]}")


def flask_module(name, generation, factory, init_db):
    return FLASK_APP.format(
        name=name, generation=generation, exists="" if init_db else "IF NOT EXISTS ", lazy=not init_db,
        maker="create_app" if factory else "_make_app",
        params='config="development"' if factory else "",
        config="config" if factory else '"module"',
        module_app="" if factory else "\n\napp = _make_app()\n")


def package(root, package_dir, files):
    for relative, text in files.items():
        path = root / package_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def write(out, generation):
    g = generation
    apps = {}
    # setuptools, src/ layout, a factory called with an argument, an
    # init-db hook; Flask's instance folder is the installed package's.
    apps["setup"] = {
        "pyproject.toml": pyproject("setup_notes", "setuptools", ["flask>=3"], g),
        "src/setup_notes/__init__.py": flask_module("setup", g, factory=True, init_db=True),
    }
    # flit_core, a flat package, a module-level app, an init-db hook.
    apps["flit"] = {
        "pyproject.toml": pyproject("flit_notes", "flit_core", ["flask>=3"], g),
        "flit_notes/__init__.py": flask_module("flit", g, factory=False, init_db=True),
    }
    # hatchling, src/ layout, Flask-Migrate; the migrations sit beside the
    # project, where `flask db` looks for them.
    apps["hatch"] = {
        "pyproject.toml": pyproject("hatch_notes", "hatchling",
                                    ["flask>=3", "flask-sqlalchemy>=3.1", "flask-migrate>=4"], g),
        "src/hatch_notes/__init__.py": MIGRATE_APP.format(
            name="hatch", generation=g,
            extra_column="" if g < 2 else '    stars = db.Column(db.Integer, nullable=False, server_default="0")\n'),
        "migrations/env.py": ALEMBIC_ENV,
        **{f"migrations/versions/{n}": text for n, text in list(MIGRATIONS.items())[:g]},
    }
    # pdm-backend, its dependencies pinned by a lock file that the deploy
    # installs (app_requirements_file); mounted under /blog.
    apps["pdm"] = {
        "pyproject.toml": pyproject("pdm_notes", "pdm-backend", ["flask>=3"], g),
        "requirements.lock": "flask==3.1.2\nwerkzeug==3.1.3\njinja2==3.1.6\nitsdangerous==2.2.0\n"
                             "click==8.2.1\nblinker==1.9.0\nmarkupsafe==3.0.2\n",
        "src/pdm_notes/__init__.py": flask_module("pdm", g, factory=False, init_db=False),
    }
    # poetry-core: uploads and slow requests.
    apps["poetry"] = {
        "pyproject.toml": pyproject("poetry_notes", "poetry-core", ["flask>=3"], g),
        "poetry_notes/__init__.py": flask_module("poetry", g, factory=True, init_db=False),
    }
    # No pyproject.toml: a module and its requirements, which pin the server
    # (as in apps that ran on a PaaS); the source tree is on sys.path, so
    # Flask's instance folder is the release's instance/.
    apps["plain"] = {
        "requirements.txt": f"flask>=3\ngunicorn=={PINNED_GUNICORN}\n",
        "plain_notes.py": flask_module("plain", g, factory=False, init_db=False),
    }
    apps["django"] = {relative: text.format(generation=g) if relative == "notes/views.py" else text
                      for relative, text in DJANGO.items()}
    statics = {"setup": "src/setup_notes/static", "flit": "flit_notes/static", "hatch": "src/hatch_notes/static",
               "pdm": "src/pdm_notes/static", "poetry": "poetry_notes/static", "plain": "static",
               "django": "notes/static/notes"}
    for name, files in apps.items():
        files[f"{statics[name]}/app.css"] = CSS.format(name=name, generation=g)
        shutil.rmtree(out / name, ignore_errors=True)
        package(out / name, ".", {k: textwrap.dedent(v) for k, v in files.items()})
    return sorted(apps)


if __name__ == "__main__":
    print(" ".join(write(Path(sys.argv[1]), int(sys.argv[2]))))
