"""Spread connections over Gunicorn's gthread workers: a worker accepts a new
connection only while one of its threads is free.

gunicorn.conf.py (wsgi.stack.gunicorn) loads this file and calls its
post_worker_init from that hook, with the range of Gunicorn versions whose
gthread worker this was checked against. Outside that range, or where the
worker lacks a method this relies on, it changes nothing and logs why: it
never runs against internals it was not written for.

Why: every gthread worker polls the shared listening socket and accepts
whenever it wakes, whatever its threads are doing. Under load the worker
that wakes first takes most connections and queues their requests behind
its own busy threads, while the other workers' threads stay idle; nginx's
kept-alive upstream connections then keep the imbalance. Upstream Gunicorn
(27.0) stops accepting only when a worker holds worker_connections (1000 by
default) connections, busy or idle (https://github.com/benoitc/gunicorn/issues/3433).

What: the worker counts the connections its thread pool holds (submitted
and not finished). While that count reaches `threads`, it stops polling the
listening socket, so new connections wait in the socket's queue for the
first worker with a free thread; it polls again as soon as a thread is
done. A request on one of its own kept-alive connections is still served by
it (queued in its pool), as Gunicorn does. Everything the worker does when it
stops (no new accepts, kept-alive connections served briefly and closed,
Connection: close while draining) is Gunicorn's own since 27.0: nothing here
touches it.

All counting happens on the worker's main thread: Gunicorn runs enqueue_req,
finish_request (through its method queue) and set_accept_enabled there.
"""

import re

# The methods of gunicorn.workers.gthread.ThreadWorker this relies on.
HOOKS = ("enqueue_req", "finish_request", "set_accept_enabled")


def post_worker_init(worker, oldest, newest):
    import gunicorn
    from gunicorn.workers.gthread import ThreadWorker

    if not isinstance(worker, ThreadWorker):
        return
    version = gunicorn.__version__
    missing = [name for name in HOOKS if not callable(getattr(worker, name, None))]
    if missing or not _release(oldest) <= _release(version) <= _release(newest):
        worker.log.warning(
            "wsgi.stack: the gthread accept shim was checked with Gunicorn %s to %s, not %s; "
            "not applied (a worker may take connections while all its threads are busy)",
            oldest, newest, version)
        return
    worker.__class__ = _accepting_with_a_free_thread(type(worker))
    worker.wsgi_stack_held = 0


def _release(version):
    """The release segment of a version string as a tuple of ints:
    '27.0.1' -> (27, 0, 1); a pre-release counts as its release."""
    found = re.match(r"\d+(?:\.\d+)*", version)
    parts = tuple(int(part) for part in found.group(0).split(".")) if found else ()
    return parts + (0,) * (3 - len(parts))


def _accepting_with_a_free_thread(worker_class):
    class Worker(worker_class):
        def enqueue_req(self, conn):
            self.wsgi_stack_held += 1
            super().enqueue_req(conn)
            if self.wsgi_stack_held >= self.cfg.threads:
                super().set_accept_enabled(False)

        def finish_request(self, conn, fs):
            # The pool is done with it, whatever happens to the connection
            # next (kept alive, deferred, closed, or submitted again).
            self.wsgi_stack_held -= 1
            super().finish_request(conn, fs)

        def set_accept_enabled(self, enabled):
            # Gunicorn's loop asks for accepting again after every batch of
            # events; it gets it once a thread is free.
            if enabled and self.wsgi_stack_held >= self.cfg.threads:
                return
            super().set_accept_enabled(enabled)

    Worker.__name__ = Worker.__qualname__ = worker_class.__name__
    Worker.__module__ = worker_class.__module__
    return Worker
