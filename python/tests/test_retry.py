"""steadfast.retry: service configs validated, turned into grpcio channel
options, and retrying a call that a kill -9 cut, against contact-server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import grpc
import pytest

from servers import FAST_RECONNECT, Server, generated_modules
from steadfast import retry
from steadfast.retry import RetryPolicy, ServiceConfig, ServiceConfigError

CONTACT = "contact.v1.Contact"


def config(policy: dict | None = None, **entry: object) -> dict:
    method = {"name": [{"service": CONTACT}], **entry}
    if policy is not None:
        method["retryPolicy"] = policy
    return {"methodConfig": [method]}


POLICY = {
    "maxAttempts": 5,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


@pytest.fixture(scope="module")
def pb():
    return generated_modules()


def test_channel_options_from_a_path_text_or_dict(tmp_path: Path):
    path = tmp_path / "service_config.json"
    path.write_text(json.dumps(config(POLICY)))
    for source in (path, str(path), path.read_text(), config(POLICY)):
        options = dict(retry.channel_options(source))
        assert options["grpc.enable_retries"] == 1
        assert json.loads(options["grpc.service_config"]) == config(POLICY)


def test_the_policy_of_a_method_by_grpc_precedence():
    text = json.dumps({"methodConfig": [
        {"name": [{}], "retryPolicy": {**POLICY, "maxAttempts": 2}},
        {"name": [{"service": CONTACT}], "retryPolicy": {**POLICY, "maxAttempts": 9}},
        {"name": [{"service": CONTACT, "method": "TellResult"}]},
    ]})
    parsed = ServiceConfig.parse(text)
    assert parsed.policy_for(CONTACT, "RemoteCmd") == RetryPolicy(max_attempts=5)  # capped
    assert parsed.policy_for(CONTACT, "TellResult") is None  # its entry has none
    assert parsed.policy_for("other.Service", "X").max_attempts == 2


@pytest.mark.parametrize(
    "text, path, problem",
    [
        ("{not json", "", "not JSON"),
        ("[]", "", "expected a JSON object"),
        (config({**POLICY, "maxAttempts": 1}), "methodConfig[0].retryPolicy.maxAttempts",
         "must be greater than 1, got 1"),
        (config({k: v for k, v in POLICY.items() if k != "maxBackoff"}),
         "methodConfig[0].retryPolicy.maxBackoff", "required"),
        (config({**POLICY, "initialBackoff": "100ms"}),
         "methodConfig[0].retryPolicy.initialBackoff", "malformed duration"),
        (config({**POLICY, "retryableStatusCodes": ["unavailable"]}),
         "methodConfig[0].retryPolicy.retryableStatusCodes[0]", "unknown status code name"),
        (config({**POLICY, "retryableStatusCodes": []}),
         "methodConfig[0].retryPolicy.retryableStatusCodes", "must not be empty"),
        (config({**POLICY, "backoffMultiplier": 0}),
         "methodConfig[0].retryPolicy.backoffMultiplier", "greater than 0"),
        ({"methodConfig": [{"name": [{"method": "RemoteCmd"}]}]},
         "methodConfig[0].name[0]", "must have a service"),
        ({"methodConfig": [{"name": [{"service": CONTACT}]}, {"name": [{"service": CONTACT}]}]},
         "methodConfig[1].name[0]", "duplicate name, already given at methodConfig[0].name[0]"),
        ({"retryThrottling": {"maxTokens": 10}}, "retryThrottling.tokenRatio", "required"),
    ],
)
def test_a_malformed_config_is_refused_naming_the_field(text, path, problem):
    if not isinstance(text, str):
        text = json.dumps(text)
    with pytest.raises(ServiceConfigError) as raised:
        retry.channel_options(text)
    assert raised.value.path == path
    assert problem in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_a_missing_file_is_a_file_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        retry.channel_options(tmp_path / "absent.json")


def cut_and_restart_during_a_call(pb, server: Server, channel: grpc.Channel) -> grpc.Future:
    """A RemoteCmd whose server is killed mid-call and restarted at once."""
    stub = pb["contact_pb2_grpc"].ContactStub(channel)
    future = stub.RemoteCmd.future(pb["contact_pb2"].Command(id=7, line="uptime"), timeout=20)
    time.sleep(0.3)  # the server is sleeping on --delay-ms
    server.restart()
    return future


def test_grpcio_retries_a_call_cut_by_kill_9_by_the_service_config(pb):
    with Server("contact-server", args=["--delay-ms", "700"]) as server:
        sc = config(POLICY, waitForReady=True)
        with retry.insecure_channel(server.addr, service_config=sc,
                                    options=FAST_RECONNECT) as channel:
            reply = cut_and_restart_during_a_call(pb, server, channel).result()
            assert reply.id == 7 and reply.output == "ran `uptime`"


def test_without_a_retry_policy_the_same_call_fails(pb):
    # The control: the same scenario, with the same config minus retryPolicy.
    with Server("contact-server", args=["--delay-ms", "700"]) as server:
        with retry.insecure_channel(server.addr, service_config=config(None, waitForReady=True),
                                    options=FAST_RECONNECT) as channel:
            with pytest.raises(grpc.RpcError) as raised:
                cut_and_restart_during_a_call(pb, server, channel).result()
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_policy_backoff_is_full_jitter_under_the_cap():
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, backoff_multiplier=2)
    assert [policy.backoff_cap(n) for n in (1, 2, 3, 4, 5, 50)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert all(0 <= policy.backoff(3) <= 0.4 for _ in range(100))
    assert policy.to_json()["initialBackoff"] == "0.1s"
    assert ServiceConfig.parse(json.dumps(config(policy.to_json()))).policy_for(CONTACT, "X") == policy
    with pytest.raises(ServiceConfigError):
        RetryPolicy(max_attempts=1)


def test_channel_options_leave_no_thread_behind(pb):
    before = set(threading.enumerate())
    with Server("contact-server") as server:
        with retry.insecure_channel(server.addr, service_config=config(POLICY)) as channel:
            stub = pb["contact_pb2_grpc"].ContactStub(channel)
            assert stub.RemoteCmd(pb["contact_pb2"].Command(id=1, line="x"), timeout=10).id == 1
    from servers import wait_no_new_threads
    assert wait_no_new_threads(before) == []
