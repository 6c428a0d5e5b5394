"""The embedded moto's lock (tally_local.dynamodb.InTurn): calls get it in the order they asked."""

from __future__ import annotations

import threading
import time

from tally_local.dynamodb import InTurn


def test_the_lock_is_given_in_the_order_it_was_asked_for():
    lock, order = InTurn(), []
    lock.acquire()
    threads = []
    for n in range(8):

        def call(n: int = n) -> None:
            with lock:
                order.append(n)

        threads.append(threading.Thread(target=call))
        threads[-1].start()
        deadline = time.monotonic() + 5
        while len(lock._waiting) < n + 1:  # queued before the next one asks
            assert time.monotonic() < deadline
            time.sleep(0.001)
    lock.release()
    for thread in threads:
        thread.join(5)
    assert order == list(range(8))
    with lock:  # free again, and taken at once
        pass
