"""template.yaml, read as SAM would deploy it: functions, their routes and schedules, the
environment each function gets, and the tables (the one definition of every table)."""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tally import routes

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub ...) read as their long form."""


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class Route:
    method: str  # "ANY" for the $default route
    path: str  # "$default" for the catch-all
    function: str

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return routes.pattern(self.path)

    @cached_property
    def _parts(self) -> tuple[tuple[str, str], ...]:
        """The path, segment by segment, read once (a route is matched at every request): each
        ("greedy", name) for `{name+}`, ("variable", name) for `{name}`, or ("literal", text)."""
        parts = []
        for part in self.path.split("/"):
            greedy, variable = re.fullmatch(r"\{(\w+)\+\}", part), re.fullmatch(r"\{(\w+)\}", part)
            if greedy:
                parts.append(("greedy", greedy.group(1)))
            elif variable:
                parts.append(("variable", variable.group(1)))
            else:
                parts.append(("literal", part))
        return tuple(parts)

    def match_segments(self, segments: list[str]) -> dict[str, str] | None:
        """The path parameters if the path's (decoded) segments fit this route, else None: a
        literal segment must be equal, `{name}` takes one segment, `{name+}` the rest."""
        params: dict[str, str] = {}
        for index, (kind, text) in enumerate(self._parts):
            if kind == "greedy":
                rest = segments[index:]
                if not rest or not all(rest):
                    return None
                params[text] = "/".join(rest)
                return params
            if index >= len(segments):
                return None
            if kind == "variable":
                if not segments[index]:
                    return None
                params[text] = segments[index]
            elif text != segments[index]:
                return None
        return params if len(segments) == len(self._parts) else None

    @property
    def specificity(self) -> tuple[int, int, int]:
        """API Gateway prefers literal paths, then fewer variables, then non-greedy ones."""
        if self.path == "$default":
            return (2, 0, 0)
        return (1 if "+}" in self.path else 0, self.path.count("{"), -len(self.path))


@dataclass(frozen=True)
class StreamSource:
    """A DynamoDB stream event of a function: the table whose stream it reads, and how Lambda
    batches and retries it."""

    table: str  # the table's logical id (Stream: !GetAtt <Table>.StreamArn)
    batch_size: int = 100
    window_s: float = 0
    bisect: bool = False
    retries: int = -1  # -1: until the records expire, as Lambda's default
    starting_position: str = "LATEST"
    report_item_failures: bool = False
    on_failure: str | None = None  # DestinationConfig.OnFailure: the destination's logical id


@dataclass
class Function:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, str]
    routes: list[Route] = field(default_factory=list)
    schedules: list[str] = field(default_factory=list)
    streams: list[StreamSource] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)  # EventBridgeRule patterns
    _module: ModuleType | None = None

    def load(self) -> Any:
        """Import the handler from CodeUri as Lambda does: module file by its unique name. One
        import at a time: a module is in sys.modules while it runs, and a second request's thread
        must not take it from there half made (tally serve's first concurrent calls did)."""
        module_name, _, attr = self.handler.rpartition(".")
        if self._module is None:
            with _IMPORTING:
                if module_name in sys.modules:
                    self._module = sys.modules[module_name]
                else:
                    source = self.code_uri / f"{module_name.replace('.', '/')}.py"
                    spec = importlib.util.spec_from_file_location(module_name, source)
                    assert spec and spec.loader, f"cannot import {source}"
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[module_name] = module
                    try:
                        spec.loader.exec_module(module)
                    except BaseException:
                        del sys.modules[module_name]  # a failed import is tried again next time
                        raise
                    self._module = module
        return getattr(self._module, attr)


_IMPORTING = threading.RLock()  # a handler module may import another function's (RLock)


def _logical_id(reference: Any) -> str | None:
    """`!GetAtt X.Arn` or `!Ref X` -> "X"; a literal ARN as it is."""
    if isinstance(reference, dict):
        if "Fn::GetAtt" in reference:
            return reference["Fn::GetAtt"][0]
        return reference.get("Ref")
    return reference


class Template:
    def __init__(self, path: Path = TEMPLATE) -> None:
        self.path = path
        self.doc = yaml.load(path.read_text(), Loader=_CfnLoader)
        self.resources: dict[str, Any] = self.doc.get("Resources", {})
        self.parameters = {
            name: str(spec.get("Default", ""))
            for name, spec in self.doc.get("Parameters", {}).items()
        }

    # -------------------------------------------------------------- tables
    def tables(self) -> dict[str, dict[str, Any]]:
        """CreateTable arguments for every AWS::DynamoDB::Table, named by its logical id."""
        out = {}
        for logical_id, res in self.resources.items():
            if res.get("Type") != "AWS::DynamoDB::Table":
                continue
            props = res["Properties"]
            spec: dict[str, Any] = {
                "TableName": logical_id,
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
            for indexes in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
                if props.get(indexes):
                    spec[indexes] = props[indexes]
            stream = props.get("StreamSpecification")
            if stream:  # CloudFormation enables a stream by naming its view; the API asks both
                spec["StreamSpecification"] = {
                    "StreamEnabled": True,
                    "StreamViewType": stream["StreamViewType"],
                }
            out[logical_id] = spec
        return out

    def ttl(self) -> dict[str, str]:
        """Table logical id -> its TTL attribute, where the template enables one."""
        return {
            logical_id: res["Properties"]["TimeToLiveSpecification"]["AttributeName"]
            for logical_id, res in self.resources.items()
            if res.get("Type") == "AWS::DynamoDB::Table"
            and res["Properties"].get("TimeToLiveSpecification", {}).get("Enabled")
        }

    # -------------------------------------------------------------- functions
    @cached_property
    def functions(self) -> dict[str, Function]:
        globals_ = self.doc.get("Globals", {}).get("Function", {})
        global_env = globals_.get("Environment", {}).get("Variables", {})
        out = {}
        for logical_id, res in self.resources.items():
            if res.get("Type") != "AWS::Serverless::Function":
                continue
            props = res["Properties"]
            env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
            fn = Function(
                logical_id=logical_id,
                code_uri=(self.path.parent / props["CodeUri"]).resolve(),
                handler=props.get("Handler", globals_.get("Handler", "")),
                environment={k: self.resolve(v) for k, v in env.items()},
            )
            for event in (props.get("Events") or {}).values():
                ep = event.get("Properties") or {}
                if event["Type"] == "HttpApi":
                    method = str(ep.get("Method", "ANY")).upper()
                    path = ep.get("Path", "$default")
                    fn.routes.append(Route(method, path, logical_id))
                elif event["Type"] in ("Schedule", "ScheduleV2"):
                    fn.schedules.append(
                        self.resolve(ep["Schedule" if "Schedule" in ep else "ScheduleExpression"])
                    )
                elif event["Type"] == "EventBridgeRule":
                    fn.rules.append(ep["Pattern"])
                elif event["Type"] == "DynamoDB":
                    fn.streams.append(
                        StreamSource(
                            table=ep["Stream"]["Fn::GetAtt"][0],
                            batch_size=int(ep.get("BatchSize", 100)),
                            window_s=float(ep.get("MaximumBatchingWindowInSeconds", 0)),
                            bisect=bool(ep.get("BisectBatchOnFunctionError", False)),
                            retries=int(ep.get("MaximumRetryAttempts", -1)),
                            starting_position=ep.get("StartingPosition", "LATEST"),
                            report_item_failures="ReportBatchItemFailures"
                            in (ep.get("FunctionResponseTypes") or []),
                            on_failure=_logical_id(
                                (ep.get("DestinationConfig") or {})
                                .get("OnFailure", {})
                                .get("Destination")
                            ),
                        )
                    )
            out[logical_id] = fn
        return out

    def routes(self) -> list[Route]:
        routes = [r for fn in self.functions.values() for r in fn.routes]
        return sorted(routes, key=lambda r: r.specificity)

    def environment(self) -> dict[str, str]:
        """Every function's environment merged. Functions run in one process locally, so a
        variable two functions set differently would be ambiguous: refuse that."""
        merged: dict[str, str] = {}
        for fn in self.functions.values():
            for key, value in fn.environment.items():
                if merged.setdefault(key, value) != value:
                    raise ValueError(
                        f"{key} differs between functions; tally serve needs one value"
                    )
        return merged

    # -------------------------------------------------------------- the HTTP API
    def cors(self) -> Any:
        """The HTTP API's CorsConfiguration, its parameters resolved; None without one."""
        from tally_local.cors import Cors

        for res in self.resources.values():
            if res.get("Type") == "AWS::Serverless::HttpApi":
                config = (res.get("Properties") or {}).get("CorsConfiguration")
                if config:
                    return Cors.from_config({k: self._resolve_any(v) for k, v in config.items()})
        return None

    def _resolve_any(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._resolve_any(v) for v in value]
        if isinstance(value, bool):
            return value
        return self.resolve(value)

    # -------------------------------------------------------------- intrinsics
    def resolve(self, value: Any) -> str:
        """The local value of a template expression: a table's name is its logical id."""
        if isinstance(value, str | int | float):
            return str(value)
        if "Ref" in value:
            ref = value["Ref"]
            if ref in self.parameters:
                return self.parameters[ref]
            return {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT}.get(ref, ref)
        if "Fn::Sub" in value:
            text = value["Fn::Sub"]
            return re.sub(r"\$\{([\w:.]+)\}", lambda m: self.resolve({"Ref": m.group(1)}), text)
        if "Fn::GetAtt" in value:
            logical_id, attr = value["Fn::GetAtt"]
            return f"arn:aws:local:{REGION}:{ACCOUNT}:{logical_id}/{attr}"
        raise ValueError(f"tally serve cannot resolve {value!r}")
