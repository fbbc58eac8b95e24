"""jobs: a Flask application that hands work to an RQ worker through Redis,
laid out as many are: one module and a requirements file. The worker and
the scheduled jobs note which release ran them, in the shared directory
`done/`.

    gunicorn jobs:app                       the web process
    rq worker --url $REDIS_URL default      the worker (app_processes)
    python -m jobs tick | fail              the scheduled jobs (app_timers)
"""

import os
import sys
import time
import uuid
from pathlib import Path

from flask import Flask, jsonify
from redis import Redis
from rq import Queue

DONE = Path("done")


def release():
    """The release this process runs: systemd starts it in `current`, resolved."""
    return Path(os.getcwd()).name


def record(job_id):
    """A job: the worker notes the release that ran it."""
    (DONE / job_id).write_text(release())


app = Flask(__name__)
queue = Queue(connection=Redis.from_url(os.environ["REDIS_URL"]))


@app.get("/health")
def health():
    return jsonify(status="ok", release=release())


@app.post("/jobs")
def enqueue():
    job_id = uuid.uuid4().hex
    queue.enqueue(record, job_id, job_id=job_id)
    return jsonify(id=job_id, release=release()), 202


@app.get("/jobs/<job_id>")
def result(job_id):
    done = DONE / Path(job_id).name
    return jsonify(done=done.exists(), release=done.read_text() if done.exists() else None)


if __name__ == "__main__":
    if sys.argv[1:] == ["tick"]:
        with open(DONE / "ticks", "a") as fh:
            fh.write(f"{time.time()} {release()}\n")
    elif sys.argv[1:] == ["fail"]:
        sys.exit(3)
    else:
        sys.exit("usage: python -m jobs tick | fail")
