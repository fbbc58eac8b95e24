"""A clean exit for Gunicorn's gthread worker: no request that reached a
worker is dropped when the worker goes away (after max_requests, on a reload
or a stop).

gunicorn.conf.py (wsgi.stack.gunicorn) loads this file and uses its
post_worker_init as that hook. It relies on private attributes of
gunicorn.workers.gthread.ThreadWorker, so it is applied only to the Gunicorn
versions it was tested with (TESTED_VERSIONS); on any other it changes
nothing and logs why once per worker.

Why: when a gthread worker is told to go, its main loop ends, its thread pool
finishes the requests it holds, and the process exits. Two kinds of
connections are neither read nor closed meanwhile, and get a reset at exit:
- connections accepted but whose request had not been read yet
  (https://github.com/benoitc/gunicorn/issues/3038);
- idle keep-alive connections, on which nginx may already have sent the next
  request, or sends it during the pool's graceful_timeout.

And a worker told to go (SIGTERM, a reload's HUP to the master) notices at
once: Gunicorn's signal handlers write to the worker's wakeup pipe, which
the gthread worker never watches, so it noticed only when its poll timed
out, up to a second later, on every restart and reload.

What: just before the pool shuts down, the worker
1. stops accepting: the master and the other workers keep the listening
   socket, so new connections wait there for them;
2. serves each connection whose request has arrived, with
   `Connection: close` (Gunicorn closes after answering a worker that is no
   longer alive);
3. closes each idle keep-alive connection at once, so that nginx sees it
   close and leaves it out of its pool, instead of sending a request that no
   one would read;
4. waits up to LINGER seconds for the request of each connection
   accepted without one yet, and serves it.
A request sent on an idle connection in the instant it is closed (step 3)
still fails; nginx then sends it again on a new connection. The nginx role
pools connections only for GET, HEAD and OPTIONS, whose repetition is safe:
every other method gets a connection of its own and is never resent.
"""

import os
import selectors
import socket
import sys
import time
from functools import partial

TESTED_VERSIONS = ("23.0.0",)
LINGER = 1.0


def post_worker_init(worker):
    import gunicorn
    from gunicorn.workers.gthread import ThreadWorker

    if not isinstance(worker, ThreadWorker):
        return
    if gunicorn.__version__ not in TESTED_VERSIONS:
        worker.log.warning(
            "wsgi.stack: the gthread clean-exit fix is written for Gunicorn %s, not %s; "
            "not applied (connections may be reset when a worker exits)",
            ", ".join(TESTED_VERSIONS), gunicorn.__version__)
        return

    _wake_on_signals(worker)
    _close_after_exit_starts(worker)
    _keep_answered_connections(worker)
    _accept_only_with_a_free_thread(worker)
    shutdown = worker.tpool.shutdown
    run_code = ThreadWorker.run.__code__

    def drain_then_shutdown(*args, **kwargs):
        # ThreadWorker.handle_quit (an immediate stop, from a signal handler)
        # shuts the pool down too: that path stays as Gunicorn has it.
        if sys._getframe(1).f_code is run_code:
            served, closed = _drain(worker)
            worker.log.debug("clean exit: served %d waiting requests, closed %d idle connections",
                             served, closed)
        return shutdown(*args, **kwargs)

    worker.tpool.shutdown = drain_then_shutdown


def _wake_on_signals(worker):
    """Watch the pipe the signal handlers write to (signal.set_wakeup_fd,
    set by Gunicorn), so that the main loop's poll returns when a signal
    arrives and the loop sees that the worker is no longer alive."""

    def empty_the_pipe(fd):
        try:
            while os.read(fd, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    worker.poller.register(worker.PIPE[0], selectors.EVENT_READ, empty_the_pipe)


def _close_after_exit_starts(worker):
    """Answer `Connection: close` on every response whose headers leave after
    the worker was told to go, not only on requests that began after it.

    Gunicorn decides at the start of a request; a response it sends with
    keep-alive after that is followed by a close that nginx does not expect.
    """
    from gunicorn.http.wsgi import Response

    should_close = Response.should_close

    def should_close_unless_alive(self):
        return not worker.alive or should_close(self)

    Response.should_close = should_close_unless_alive


def _keep_answered_connections(worker):
    """Keep serving a connection whose response left with keep-alive just
    before the worker was told to go (Gunicorn would close it at once, while
    nginx may already be sending the next request on it): the exit drain
    serves that request or closes the connection once idle."""
    finish_request = worker.finish_request

    def finish_or_keep(fs):
        if not worker.alive and not worker._wsgi_stack_drained and not fs.cancelled():
            try:
                keepalive, conn = fs.result()
            except Exception:
                keepalive = False
            if keepalive:
                conn.sock.setblocking(False)
                conn.set_timeout()
                with worker._lock:
                    worker._keep.append(conn)
                    worker.poller.register(conn.sock, selectors.EVENT_READ,
                                           partial(worker.on_client_socket_readable, conn))
                return
        finish_request(fs)

    worker._wsgi_stack_drained = False
    worker.finish_request = finish_or_keep


def _accept_only_with_a_free_thread(worker):
    """Leave new connections to the other workers while every thread of this
    one is busy: they wait in the listening socket's queue for the first
    worker with a free thread, instead of queueing behind this worker's.

    Without this the worker that wakes first accepts nearly every connection
    (the others' threads stay idle), and keep-alive keeps them there.
    """
    threads = worker.cfg.threads
    state = {"active": 0, "paused": {}}
    lock = worker._lock
    accept, enqueue_req, finish_request = worker.accept, worker.enqueue_req, worker.finish_request

    def accept_if_free(server, listener):
        with lock:
            if state["active"] >= threads and worker.alive:
                key = worker.poller.unregister(listener)
                state["paused"][listener] = key.data
                return
        accept(server, listener)

    def enqueue_counted(conn):
        with lock:
            state["active"] += 1
        enqueue_req(conn)

    def finish_counted(fs):
        with lock:
            state["active"] -= 1
            if state["paused"] and state["active"] < threads and worker.alive:
                for listener, acceptor in state["paused"].items():
                    worker.poller.register(listener, selectors.EVENT_READ, acceptor)
                state["paused"].clear()
        finish_request(fs)

    worker.accept = accept_if_free
    worker.enqueue_req = enqueue_counted
    worker.finish_request = finish_counted


def _connections(worker):
    with worker._lock:
        keys = list(worker.poller.get_map().values())
    return [key for key in keys if key.fileobj not in worker.sockets]


def _has_data(sock):
    """True if bytes (or the peer's close) wait on a non-blocking socket."""
    try:
        sock.recv(1, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True  # an error: reading it ends the connection cleanly
    return True


def _close_idle(worker, conn):
    """Close a connection that waits in the poller with no request: kept
    alive (also in worker._keep) or accepted without its request yet."""
    with worker._lock:
        if conn.initialized:
            try:
                worker._keep.remove(conn)
            except ValueError:
                return False  # a thread took it in the meantime
        try:
            worker.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
    worker.nr_conns -= 1
    conn.close()
    return True


def _drain(worker):
    served = closed = 0
    with worker._lock:
        for sock in worker.sockets + [worker.PIPE[0]]:
            try:
                worker.poller.unregister(sock)
            except (KeyError, ValueError):
                pass
    # Serve what arrives for LINGER seconds: requests on idle keep-alive
    # connections (answered with Connection: close, so nginx drops them from
    # its pool) and on connections accepted without their request yet.
    deadline = time.monotonic() + LINGER
    while True:
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            break
        connections = _connections(worker)
        busy = any(not fs.done() for fs in list(worker.futures))
        if not busy and not connections:
            break
        for key, _ in worker.poller.select(min(timeout, 0.05)):
            key.data(key.fileobj)
            served += 1
    # Then close the idle ones that nginx did not use.
    with worker._lock:
        worker._wsgi_stack_drained = True
    for key in _connections(worker):
        conn = key.data.args[0]
        if _has_data(conn.sock):
            key.data(key.fileobj)
            served += 1
        elif _close_idle(worker, conn):
            closed += 1
    return served, closed
