"""`tally serve`'s scheduler: the template's Schedule events, fired as EventBridge would."""

from __future__ import annotations

import io
import threading

import pytest

from tally_local import cli, schedule
from tests.conftest import TEMPLATE


@pytest.mark.parametrize(
    "expression, seconds",
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("cron(0 12 * * ? *)", None),  # not fired locally
        ("rate(5 fortnights)", None),
    ],
)
def test_interval_of_a_schedule_expression(expression, seconds):
    assert schedule.interval_of(expression) == seconds


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "soon"])
def test_serve_refuses_a_schedule_interval_that_is_not_a_positive_number(bad, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--schedule-interval", bad])
    assert exited.value.code == 2
    assert "is not a positive number of seconds" in capsys.readouterr().err


def test_a_run_that_fails_is_reported_and_the_schedule_goes_on(monkeypatch):
    billing = TEMPLATE.functions["BillingFunction"]
    runs: list[dict] = []
    third = threading.Event()

    def invoke(fn, event):
        runs.append(event)
        if len(runs) >= 3:
            third.set()
        if len(runs) == 1:
            raise RuntimeError("DynamoDB is down")
        return {"failed": 0}

    monkeypatch.setattr(schedule, "invoke", invoke)
    log = io.StringIO()
    scheduler = schedule.Scheduler([billing], override_s=0.01, log=log)
    scheduler.start()
    try:
        assert third.wait(5)
    finally:
        scheduler.stop()

    assert scheduler.describe() == "BillingFunction every 0.01s"
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("schedule BillingFunction failed: RuntimeError('DynamoDB is down')")
    assert '{"failed": 0}' in lines[1]
    assert runs[0]["detail-type"] == "Scheduled Event" and runs[0]["source"] == "aws.events"


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--dynamodb-port", "8100"], "--dynamodb-port 8100 and AWS_ENDPOINT_URL_DYNAMODB"),
        (
            ["--dynamodb", "moto"],
            "--dynamodb moto starts a DynamoDB, but AWS_ENDPOINT_URL_DYNAMODB",
        ),
        (["--dynamodb", "dynamodb-local"], "--dynamodb dynamodb-local starts a DynamoDB"),
    ],
)
def test_serve_refuses_two_names_for_its_dynamodb(flags, says, monkeypatch, capsys):
    """An endpoint in the environment and a flag for another: refused, naming both, instead of
    one silently winning."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")
    assert cli.main(["serve", *flags]) == 2
    assert says in capsys.readouterr().err
