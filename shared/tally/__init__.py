"""tally's domain: counters, API keys, access rules and the two HTTP dialects.

Shipped as the Lambda layer (it lands in /opt/python/tally); handlers in functions/ import it.
"""

import gc
import time

# When the handler's first tally import began: a cold start's init_ms counts from it.
STARTED = time.perf_counter()

import boto3  # noqa: E402, F401  (every handler needs it by its first request: load it first)

# boto3 leaves a large graph of objects that live as long as the container. Without this, every
# later import that allocates triggers full collections that rescan all of it: ~100 ms of each
# cold start (bench/cold_start.py). Frozen objects are simply never scanned again.
gc.freeze()
