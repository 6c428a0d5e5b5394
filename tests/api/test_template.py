"""template.yaml is the one source of functions, routes, tables and permissions; these pin that
the code, the events and the layer agree with it."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections import Counter as Multiset
from types import SimpleNamespace

import pytest

from tally import aws, routes
from tally_local.gateway import LambdaContext
from tests.conftest import EVENTS, ROOT, TEMPLATE, load_event

FUNCTIONS = TEMPLATE.functions


def test_every_route_of_the_template_is_known_to_the_default_function():
    declared = {(r.method, r.path) for r in TEMPLATE.routes() if r.path != "$default"}
    assert declared == set(routes.ROUTES)


def test_there_is_exactly_one_default_route():
    assert [r.function for r in TEMPLATE.routes() if r.path == "$default"] == [
        "RouteNotFoundFunction"
    ]


# The dashboard's page and its files: one function, so one warm container serves them all.
SEVERAL_ROUTES = {"DashboardFunction": {"/dashboard", "/dashboard/{file}"}}


def test_every_function_has_one_route_or_only_background_triggers_and_a_unique_module():
    modules = Multiset(fn.handler.rsplit(".", 1)[0] for fn in FUNCTIONS.values())
    for fn in FUNCTIONS.values():
        module = fn.handler.rsplit(".", 1)[0]
        assert (fn.code_uri / f"{module}.py").is_file(), fn.logical_id
        assert modules[module] == 1, f"{module} is not unique"
        background = len(fn.schedules) + len(fn.streams) + len(fn.rules)
        if fn.logical_id in SEVERAL_ROUTES:
            assert {r.path for r in fn.routes} == SEVERAL_ROUTES[fn.logical_id]
            assert {r.method for r in fn.routes} == {"GET"} and not background
            continue
        # An endpoint serves one route and nothing else; a background function has streams,
        # schedules or bus rules (PublishEvents reads two streams, DeliverWebhooks a rule and
        # its retry schedule).
        assert (len(fn.routes), bool(background)) in ((1, False), (0, True)), fn.logical_id


def _referenced(value) -> set[str]:
    """The logical ids an output's value names (Ref, GetAtt, Sub), anywhere inside it."""
    if isinstance(value, dict):
        found = {value["Ref"]} if "Ref" in value else set()
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            found |= {
                name.split(".")[0] for name in re.findall(r"\$\{([\w.]+)\}", value["Fn::Sub"])
            }
        return found.union(*(_referenced(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_referenced(v) for v in value))
    return set()


def test_the_outputs_name_the_api_and_everything_a_user_must_read_or_delete_by_hand():
    """After `sam deploy` a user needs the API's URL, the admin token's parameter, and every queue
    and event bus to read; a retained table outlives the stack, so it is named to delete."""
    outputs = TEMPLATE.doc["Outputs"]
    named = set().union(*(_referenced(output["Value"]) for output in outputs.values()))
    must = {
        logical_id
        for logical_id, resource in TEMPLATE.resources.items()
        if resource["Type"] in ("AWS::SQS::Queue", "AWS::Events::EventBus")
        or (
            resource["Type"] == "AWS::DynamoDB::Table"
            and resource.get("DeletionPolicy") == "Retain"
        )
    }
    assert {"TallyApi", "AdminTokenParameterName", "FunctionLogGroup"} | must <= named
    assert "https://${TallyApi}.execute-api." in outputs["ApiUrl"]["Value"]["Fn::Sub"]


HANDLERS = {fn.handler.rsplit(".", 1)[0]: fn.logical_id for fn in FUNCTIONS.values()}


def _function_of(event: str) -> str | None:
    """The function a sample event is for: `<handler>.json`, or a variant `<handler>_<what>.json`
    (the longest handler name that fits)."""
    fits = [h for h in HANDLERS if event == h or event.startswith(h + "_")]
    return HANDLERS[max(fits, key=len)] if fits else None


def test_every_function_has_a_sample_event_and_every_event_a_function():
    stems = {p.stem for p in EVENTS.glob("*.json")}
    assert set(HANDLERS) <= stems
    assert all(_function_of(stem) for stem in stems)


def test_the_readme_names_the_function_of_every_sample_event():
    readme = (ROOT / "README.md").read_text()
    listed = dict(re.findall(r"^\| `events/(\w+)\.json` \| `(\w+)` \|", readme, re.MULTILINE))
    assert listed == {p.stem: _function_of(p.stem) for p in EVENTS.glob("*.json")}


def test_the_deploy_guide_names_every_parameter_and_output_of_the_template():
    guide = (ROOT / "README.md").read_text().split("\n## Deploying\n", 1)[1].split("\n## ", 1)[0]
    for name in [*TEMPLATE.doc["Parameters"], *TEMPLATE.doc["Outputs"]]:
        assert f"| `{name}` |" in guide, f"{name} is not in the README's Deploying tables"


def test_the_layer_pins_what_pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = (ROOT / "shared" / "requirements.txt").read_text().splitlines()
    pinned = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert pinned == set(project["dependencies"])


def test_the_layer_is_built_for_the_functions_runtime_and_architecture():
    functions = TEMPLATE.doc["Globals"]["Function"]
    layer = TEMPLATE.doc["Resources"]["SharedLayer"]
    runtime, (arch,) = functions["Runtime"], functions["Architectures"]
    assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
    assert layer["Properties"]["CompatibleArchitectures"] == [arch]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": arch}
    # What `sam build` would run (a dry run: nothing is built).
    planned = subprocess.run(
        ["make", "-n", "-C", str(ROOT / "shared"), "build-SharedLayer", "ARTIFACTS_DIR=/x"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    version = runtime.removeprefix("python")
    assert f"{runtime} -m compileall" in planned and f"--python-version {version}" in planned
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[arch]
    platforms = re.findall(r"--platform (\S+)", planned)
    assert platforms and all(p.endswith(f"_{machine}") for p in platforms)


def test_the_dashboard_is_built_with_its_handler_and_its_files_beside_it():
    dashboard = TEMPLATE.doc["Resources"]["DashboardFunction"]
    assert dashboard["Metadata"] == {"BuildMethod": "makefile", "ContextPath": "dashboard"}
    # What `sam build` would run, in a copy of the CodeUri (a dry run: nothing is built).
    planned = subprocess.run(
        ["make", "-n", "-f", str(ROOT / "dashboard" / "Makefile"), "build-DashboardFunction"],
        cwd=ROOT / dashboard["Properties"]["CodeUri"],
        env={"ARTIFACTS_DIR": "/x", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert 'cp dashboard.py "/x/"' in planned
    assert '"/x/dashboard/"' in planned and '"/x/dashboard/vendor/"' in planned


# ------------------------------------------------------------------ each function, its event


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_each_function_answers_its_sample_event_with_only_the_permissions_it_is_granted(
    logical_id, demo, monkeypatch
):
    fn = FUNCTIONS[logical_id]
    event = load_event(fn.handler.rsplit(".", 1)[0])
    used = _record_dynamodb_calls()
    published: list[dict] = []
    bus = SimpleNamespace(
        put_events=lambda Entries: published.extend(Entries) or {"Entries": [{}] * len(Entries)}
    )
    monkeypatch.setattr(aws, "events", lambda: bus)

    answer = fn.load()(event, LambdaContext(fn))

    if fn.rules:  # the bus's event, to the demo's webhooks (none takes it)
        assert answer == {"deliveries": 0}, answer
    elif fn.schedules:
        assert answer["failed"] == 0 and "items_created" in answer, answer
    elif fn.streams:  # every record taken, and written (to the history table) or published
        assert answer == {"batchItemFailures": []} and (used or published), answer
        if published:
            assert _policy_allows(logical_id, "events:PutEvents", "TallyEventBus")
    else:
        expected = 404 if logical_id == "RouteNotFoundFunction" else None
        assert answer["statusCode"] == (expected or (201 if "Create" in logical_id else 200))
    granted = _granted(logical_id)
    for action, table in used:
        assert (action, table) in granted, f"{logical_id} uses {action} on {table} ungranted"


def _record_dynamodb_calls() -> set[tuple[str, str]]:
    used: set[tuple[str, str]] = set()

    def record(model, params, **_):
        if model.name == "TransactWriteItems":  # IAM authorises each item's own action
            for item in params["TransactItems"]:
                ((kind, body),) = item.items()
                action = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
                used.add((f"dynamodb:{action.get(kind, 'ConditionCheckItem')}", body["TableName"]))
        else:
            table = params["TableName"]
            if "IndexName" in params:  # an index is a resource of its own
                table = f"{table}/index/{params['IndexName']}"
            used.add((f"dynamodb:{model.name}", table))

    for client in (aws.dynamodb(),):
        client.meta.events.register("before-parameter-build.dynamodb.*", record)
    return used


def _policy_allows(logical_id: str, action: str, resource: str) -> bool:
    statements = [
        statement
        for policy in TEMPLATE.resources[logical_id]["Properties"].get("Policies", [])
        for statement in policy.get("Statement", [])
    ]
    return any(s["Action"] == action and resource in json.dumps(s["Resource"]) for s in statements)


def _granted(logical_id: str) -> set[tuple[str, str]]:
    """(action, table logical id) pairs the function's policy statements allow."""
    props = TEMPLATE.resources[logical_id]["Properties"]
    granted = set()
    for policy in props.get("Policies", []):
        for statement in policy.get("Statement", []):
            actions = statement["Action"]
            resources = statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                for resource in resources if isinstance(resources, list) else [resources]:
                    granted.add((action, _table_of(resource)))
    return granted


def _table_of(resource) -> str | None:
    """`!GetAtt T.Arn` -> "T"; `!Sub "${T.Arn}/index/I"` -> "T/index/I"."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return resource["Fn::GetAtt"][0]
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        return re.sub(r"\$\{(\w+)\.Arn\}", r"\1", resource["Fn::Sub"])
    return None


def test_no_function_is_granted_a_wildcard():
    for logical_id in FUNCTIONS:
        for policy in TEMPLATE.resources[logical_id]["Properties"].get("Policies", []):
            # Statements only: no managed policy or SAM policy template (DynamoDBCrudPolicy...).
            assert isinstance(policy, dict) and set(policy) == {"Statement"}, logical_id
            for statement in policy["Statement"]:
                actions, resources = statement["Action"], statement["Resource"]
                for action in [actions] if isinstance(actions, str) else actions:
                    assert "*" not in action, (logical_id, action)
                for resource in resources if isinstance(resources, list) else [resources]:
                    assert isinstance(resource, dict), (logical_id, resource)  # never "*"
