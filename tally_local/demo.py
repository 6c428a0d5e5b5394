"""The `demo` workspace of the embedded endpoint: well-known keys so that the sample events in
events/ work with `tally invoke` (and in tests) out of the box. Local state only; never deployed."""

from __future__ import annotations

from typing import Any

DEMO_WORKSPACE = "demo"
DEMO_KEY = "tly_demo_local-development-key-not-a-secret"  # admin scope
DEMO_READ_KEY = "tly_demoread_local-read-key-not-a-secret"  # events/revoke_api_key.json revokes it
# Two webhooks to a port nothing listens on (the discard port), for events/ to name: the first
# for list_webhook_deliveries.json, the second for delete_webhook.json to delete.
DEMO_WEBHOOKS = {
    "wh_00000000000000000001": "demo: a receiver that is not there (its deliveries fail)",
    "wh_00000000000000000002": "demo: the sample event delete_webhook deletes it",
}


def seed_demo(client: Any) -> bool:
    """Create the demo workspace, its keys and a public `visits` counter (a web page can count
    on it with no key) unless they exist. True if they were created now."""
    from tally import counter_settings, counters, keys, webhooks, workspaces
    from tally.errors import Conflict

    try:
        workspaces.create(DEMO_WORKSPACE, client=client, key_id="demo", secret=DEMO_KEY)
    except Conflict:
        return False
    keys.create_key(
        DEMO_WORKSPACE, ("read",), client=client, key_id="demoread", secret=DEMO_READ_KEY
    )
    counters.change(DEMO_WORKSPACE, "visits", +1, client=client)  # what the sample events read
    counter_settings.put(DEMO_WORKSPACE, "visits", {"visibility": "public"}, client=client)
    for webhook_id, description in DEMO_WEBHOOKS.items():
        webhooks.create(
            DEMO_WORKSPACE,
            "http://127.0.0.1:9/demo",
            ["tally.counter.bound_reached"],
            description,
            client=client,
            webhook_id=webhook_id,
        )
    return True
