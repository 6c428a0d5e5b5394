"""tally serve's request threads (tally_local.gateway_log.Workers): a connection is served by an
idle thread if there is one, else by a new one, so connections at once never wait for each
other and a thread is not started per connection."""

from __future__ import annotations

import threading
import time

from tally_local.gateway_log import Workers


def _idle(workers: Workers, count: int) -> None:
    """Wait (5 s at most) until `count` threads are back waiting for a connection."""
    deadline = time.monotonic() + 5
    while workers.idle != count:
        assert time.monotonic() < deadline, workers.idle
        time.sleep(0.001)


def test_connections_one_after_another_are_served_by_one_thread():
    served: list[str] = []
    done = threading.Semaphore(0)

    def serve(n: int) -> None:
        served.append(threading.current_thread().name + str(threading.get_ident()))
        done.release()

    workers = Workers(serve)
    for n in range(5):
        workers.submit(n)
        assert done.acquire(timeout=5)
        _idle(workers, 1)
    assert len(set(served)) == 1


def test_connections_at_once_each_get_a_thread_and_none_waits_for_another():
    count = 6
    inside = threading.Barrier(count + 1, timeout=5)  # broken unless all are served at once
    threads: set[int] = set()

    def serve(n: int) -> None:
        threads.add(threading.get_ident())
        inside.wait()

    workers = Workers(serve)
    for n in range(count):
        workers.submit(n)
    inside.wait()
    assert len(threads) == count
    _idle(workers, count)
    # Then idle, they serve the next ones: no thread more.
    again = threading.Barrier(count + 1, timeout=5)
    workers.serve = lambda n: (threads.add(threading.get_ident()), again.wait())
    for n in range(count):
        workers.submit(n)
    again.wait()
    assert len(threads) == count
