"""Sharded counters (tally.shards): exactness under concurrent changes, room moved between
shards under a bound, resharding while changes are in flight, stats and history on the sum, on
moto and on DynamoDB Local."""

from __future__ import annotations


def _settings(api, key, name, body):
    return api("PUT", f"/account/counters/{name}/settings", key=key, body=body)


def _add(api, key, name, amount):
    return api("POST", f"/account/counters/{name}/{amount}", key=key)


def _value(api, key, name):
    return api("GET", f"/v2/acme/{name}", key=key).body["data"]


def _items(ddb, name):
    """Every item of the counter: shard 0 and its shards (keyed outside the workspace)."""
    found = ddb.scan(TableName="CountersTable")["Items"]
    return [i for i in found if i["counter"]["S"] == name]


def test_a_sharded_counter_counts_every_change_and_lists_once(api, workspace, ddb):
    _, key = workspace
    put = _settings(api, key, "hot", {"shards": 4})
    assert put.status == 200, put.body
    assert put.body["shards"] == 4
    assert len(_items(ddb, "hot")) == 4

    for _ in range(40):
        answer = api("GET", "/v2/acme/hot/up", key=key)
        assert answer.status == 200, answer.body
    _add(api, key, "hot", -5)

    data = _value(api, key, "hot")
    assert (data["value"], data["up_count"], data["down_count"]) == (35, 40, 5)
    assert api("GET", "/account/counters", key=key).body == {"counters": {"hot": 35}}
    shares = [int(i.get("v", {"N": "0"})["N"]) for i in _items(ddb, "hot")]
    assert sum(shares) == 35 and sum(1 for s in shares if s) > 1  # spread over shards
