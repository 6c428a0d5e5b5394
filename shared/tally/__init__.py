"""tally's domain: counters, API keys, access rules and the two HTTP dialects.

Shipped as the Lambda layer (it lands in /opt/python/tally); handlers in functions/ import it.
"""
