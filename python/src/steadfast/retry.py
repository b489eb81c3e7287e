"""Retry policies: gRPC service configs for grpcio channels, and the policy of
reconnecting sessions.

A gRPC service config (the JSON of gRFC A6 that grpc-go, grpc-java and grpcio
read; ``steadfast-codegen wire`` writes one as ``service_config.json`` beside
the wire protos) makes grpcio itself retry unary and server-streaming calls.
:func:`channel_options` validates one and turns it into channel options::

    import grpc
    from steadfast import retry

    channel = grpc.insecure_channel(
        "127.0.0.1:50061", options=retry.channel_options("gen/service_config.json"))
    # or, the same in one call:
    channel = retry.insecure_channel("127.0.0.1:50061", service_config="gen/service_config.json")

The validation is steadfast's (``runtime/src/retry/config.rs``), stricter than
grpcio's, which ignores a malformed config with a log line and then does not
retry at all: a :class:`ServiceConfigError` names the field at fault
(``methodConfig[0].retryPolicy.maxAttempts: must be greater than 1, got 1``).

:class:`RetryPolicy` is the policy of :mod:`steadfast.session`: the same fields,
read from a service config with :meth:`ServiceConfig.policy_for`.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

__all__ = [
    "DEFAULT_ATTEMPT_LIMIT",
    "RetryPolicy",
    "ServiceConfig",
    "ServiceConfigError",
    "channel_options",
    "insecure_channel",
    "parse_duration",
]

#: The attempt cap of gRFC A6: a ``maxAttempts`` above it gets this many.
DEFAULT_ATTEMPT_LIMIT = 5

_CODES_BY_NAME = {code.name: code for code in grpc.StatusCode}
_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
_DURATION = re.compile(r"^(\d*)(?:\.(\d*))?s$")
# proto3's Duration range.
_MAX_SECONDS = 315_576_000_000


class ServiceConfigError(ValueError):
    """A service config that cannot be used; :attr:`path` names the field at
    fault (empty for JSON syntax errors or a top level that is not an object)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path or 'service config'}: {problem}")


@dataclass(frozen=True)
class RetryPolicy:
    """A retry policy with the semantics of gRFC A6 (``retryPolicy``).

    Defaults as Rust's ``RetryPolicy::default``: 5 attempts, backoff bound
    from 0.1 s doubling up to 1 s (full jitter), retrying ``UNAVAILABLE``
    only. For a session, ``max_attempts`` counts attempts in a row *without
    progress*. Durations are in seconds.

    >>> RetryPolicy(max_attempts=4).backoff_cap(3)
    0.4
    """

    max_attempts: int = DEFAULT_ATTEMPT_LIMIT
    initial_backoff: float = 0.1
    max_backoff: float = 1.0
    backoff_multiplier: float = 2.0
    retryable_codes: frozenset[grpc.StatusCode] = field(
        default_factory=lambda: frozenset({grpc.StatusCode.UNAVAILABLE})
    )

    def __post_init__(self) -> None:
        problem = _policy_problem(self)
        if problem is not None:
            name, why = problem
            raise ServiceConfigError(name, why)

    def retries(self, code: grpc.StatusCode) -> bool:
        """Whether a failure with ``code`` may be retried."""
        return code in self.retryable_codes

    def backoff_cap(self, retry: int) -> float:
        """The bound of the delay before retry ``retry`` (1: before the second
        attempt): ``min(initial × multiplier^(retry−1), max)``."""
        retry = max(retry, 1)
        try:
            cap = self.initial_backoff * self.backoff_multiplier ** (retry - 1)
        except OverflowError:
            cap = self.max_backoff
        return min(cap, self.max_backoff)

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """A delay before retry ``retry``: uniform in ``[0, backoff_cap(retry)]``."""
        return (rng or random).uniform(0.0, self.backoff_cap(retry))

    def to_json(self) -> dict[str, Any]:
        """This policy as a service config's ``retryPolicy`` object."""
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": _format_duration(self.initial_backoff),
            "maxBackoff": _format_duration(self.max_backoff),
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": sorted(c.name for c in self.retryable_codes),
        }


def _policy_problem(p: RetryPolicy) -> tuple[str, str] | None:
    if not isinstance(p.max_attempts, int) or p.max_attempts < 2:
        return "maxAttempts", f"must be greater than 1, got {p.max_attempts}"
    if not p.initial_backoff > 0:
        return "initialBackoff", f"must be greater than 0, got {p.initial_backoff}s"
    if not p.max_backoff > 0:
        return "maxBackoff", f"must be greater than 0, got {p.max_backoff}s"
    m = p.backoff_multiplier
    if not (isinstance(m, (int, float)) and m > 0 and m != float("inf")):
        return "backoffMultiplier", f"must be a finite number greater than 0, got {m}"
    if not p.retryable_codes:
        return "retryableStatusCodes", "must not be empty"
    if grpc.StatusCode.OK in p.retryable_codes:
        return "retryableStatusCodes", "must not contain OK"
    return None


def parse_duration(text: str) -> float:
    """A proto3 JSON duration (``"0.1s"``, ``".5s"``, ``"2s"``) in seconds."""
    if not isinstance(text, str):
        raise ValueError(f'expected a duration string like "0.1s", got {text!r}')
    if text.startswith("-"):
        raise ValueError(f"must not be negative, got {text!r}")
    match = _DURATION.match(text)
    if not match or not (match.group(1) or match.group(2)):
        raise ValueError(
            f'malformed duration {text!r}: expected decimal seconds ending in `s`, like "0.1s"'
        )
    whole, fraction = match.group(1) or "0", match.group(2) or ""
    if len(fraction) > 9:
        raise ValueError(f"malformed duration {text!r}: more than 9 fractional digits")
    if int(whole) > _MAX_SECONDS:
        raise ValueError(f"malformed duration {text!r}: out of range")
    return int(whole) + (int(fraction.ljust(9, "0")) / 1e9 if fraction else 0.0)


def _format_duration(seconds: float) -> str:
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


@dataclass(frozen=True)
class ServiceConfig:
    """A validated service config: its JSON text (for grpcio) and the retry
    policies of its method configs, found by gRPC's name precedence."""

    text: str
    _methods: Mapping[tuple[str, str], RetryPolicy | None]

    @classmethod
    def parse(cls, text: str) -> ServiceConfig:
        """Parses and validates ``text``; raises :class:`ServiceConfigError`."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ServiceConfigError("", f"not JSON: {e}") from None
        if not isinstance(raw, dict):
            raise ServiceConfigError("", "expected a JSON object")
        methods: dict[tuple[str, str], RetryPolicy | None] = {}
        seen: dict[tuple[str, str], str] = {}
        entries = raw.get("methodConfig", [])
        if not isinstance(entries, list):
            raise ServiceConfigError("methodConfig", "expected a list")
        for i, entry in enumerate(entries):
            at = f"methodConfig[{i}]"
            if not isinstance(entry, dict):
                raise ServiceConfigError(at, "expected an object")
            policy = None
            if "retryPolicy" in entry:
                policy = _read_policy(entry["retryPolicy"], f"{at}.retryPolicy")
            if "timeout" in entry:
                _field(lambda: parse_duration(entry["timeout"]), f"{at}.timeout")
            if "waitForReady" in entry and not isinstance(entry["waitForReady"], bool):
                raise ServiceConfigError(f"{at}.waitForReady", "expected true or false")
            names = entry.get("name")
            if names is None:
                continue  # grpc-go skips an entry without names
            if not isinstance(names, list):
                raise ServiceConfigError(f"{at}.name", "expected a list")
            for j, name in enumerate(names):
                name_at = f"{at}.name[{j}]"
                if not isinstance(name, dict):
                    raise ServiceConfigError(name_at, "expected an object")
                service, method = name.get("service", ""), name.get("method", "")
                if not isinstance(service, str) or not isinstance(method, str):
                    raise ServiceConfigError(name_at, "service and method must be strings")
                if not service and method:
                    raise ServiceConfigError(name_at, "a name with a method must have a service")
                key = (service, method)
                if key in seen:
                    raise ServiceConfigError(name_at, f"duplicate name, already given at {seen[key]}")
                seen[key] = name_at
                methods[key] = policy
        throttling = raw.get("retryThrottling")
        if throttling is not None:
            _read_throttling(throttling)
        return cls(text=json.dumps(raw, separators=(",", ":")), _methods=methods)

    @classmethod
    def load(cls, path_or_text: str | os.PathLike[str] | Mapping[str, Any]) -> ServiceConfig:
        """Reads a config from a path (a :class:`os.PathLike`, or a string that
        does not start with ``{`` or ``[``), JSON text, or a dict."""
        if isinstance(path_or_text, Mapping):
            return cls.parse(json.dumps(path_or_text))
        text = os.fspath(path_or_text)
        if not isinstance(path_or_text, str) or not text.lstrip().startswith(("{", "[")):
            with open(text, encoding="utf-8") as f:
                text = f.read()
        return cls.parse(text)

    def policy_for(self, service: str, method: str) -> RetryPolicy | None:
        """The retry policy of ``service``/``method`` (``service`` is the full
        name, ``contact.v1.Contact``): the exact entry, else the service's,
        else the default one; ``None`` when that entry has no ``retryPolicy``."""
        for key in ((service, method), (service, ""), ("", "")):
            if key in self._methods:
                return self._methods[key]
        return None


def _field(read: Any, path: str) -> Any:
    try:
        return read()
    except (ValueError, TypeError) as e:
        raise ServiceConfigError(path, str(e)) from None


def _read_code(value: Any, path: str) -> grpc.StatusCode:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ServiceConfigError(path, f"expected a status code name or number, got {value!r}")
    if isinstance(value, int):
        if value not in _CODES_BY_NUMBER:
            raise ServiceConfigError(path, f"unknown status code {value}, expected 0..=16")
        return _CODES_BY_NUMBER[value]
    if value not in _CODES_BY_NAME:
        raise ServiceConfigError(
            path,
            f'unknown status code name {value!r} (names are upper case, like "UNAVAILABLE")',
        )
    return _CODES_BY_NAME[value]


def _read_policy(raw: Any, at: str) -> RetryPolicy:
    if not isinstance(raw, dict):
        raise ServiceConfigError(at, "expected an object")
    for name in ("maxAttempts", "initialBackoff", "maxBackoff", "backoffMultiplier",
                 "retryableStatusCodes"):
        if name not in raw:
            raise ServiceConfigError(f"{at}.{name}", "required")
    attempts = raw["maxAttempts"]
    if isinstance(attempts, bool) or not isinstance(attempts, int):
        raise ServiceConfigError(f"{at}.maxAttempts", f"expected an integer, got {attempts!r}")
    multiplier = raw["backoffMultiplier"]
    if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)):
        raise ServiceConfigError(f"{at}.backoffMultiplier", f"expected a number, got {multiplier!r}")
    codes = raw["retryableStatusCodes"]
    if not isinstance(codes, list):
        raise ServiceConfigError(f"{at}.retryableStatusCodes", "expected a list")
    try:
        return RetryPolicy(
            # A6: more than 5 attempts are capped to 5.
            max_attempts=min(attempts, DEFAULT_ATTEMPT_LIMIT) if attempts >= 2 else attempts,
            initial_backoff=_field(lambda: parse_duration(raw["initialBackoff"]),
                                   f"{at}.initialBackoff"),
            max_backoff=_field(lambda: parse_duration(raw["maxBackoff"]), f"{at}.maxBackoff"),
            backoff_multiplier=float(multiplier),
            retryable_codes=frozenset(
                _read_code(c, f"{at}.retryableStatusCodes[{k}]") for k, c in enumerate(codes)
            ),
        )
    except ServiceConfigError as e:
        if e.path.startswith(at):
            raise
        raise ServiceConfigError(f"{at}.{e.path}", e.problem) from None


def _read_throttling(raw: Any) -> None:
    at = "retryThrottling"
    if not isinstance(raw, dict):
        raise ServiceConfigError(at, "expected an object")
    for name in ("maxTokens", "tokenRatio"):
        if name not in raw:
            raise ServiceConfigError(f"{at}.{name}", "required")
        if isinstance(raw[name], bool) or not isinstance(raw[name], (int, float)):
            raise ServiceConfigError(f"{at}.{name}", f"expected a number, got {raw[name]!r}")
    if not 0 < raw["maxTokens"] <= 1000:
        raise ServiceConfigError(f"{at}.maxTokens", f"must be in (0, 1000], got {raw['maxTokens']}")
    if not raw["tokenRatio"] >= 0.001:
        raise ServiceConfigError(
            f"{at}.tokenRatio", f"must be a finite number of at least 0.001, got {raw['tokenRatio']}"
        )


def channel_options(
    service_config: str | os.PathLike[str] | Mapping[str, Any] | ServiceConfig,
) -> list[tuple[str, Any]]:
    """The grpcio channel options that apply ``service_config`` (a path, JSON
    text, a dict or a parsed :class:`ServiceConfig`): ``grpc.service_config``
    and ``grpc.enable_retries``. Raises :class:`ServiceConfigError`.

    >>> channel_options('{"methodConfig": []}')
    [('grpc.service_config', '{"methodConfig":[]}'), ('grpc.enable_retries', 1)]
    """
    config = service_config if isinstance(service_config, ServiceConfig) else ServiceConfig.load(
        service_config
    )
    return [("grpc.service_config", config.text), ("grpc.enable_retries", 1)]


def insecure_channel(
    target: str,
    service_config: str | os.PathLike[str] | Mapping[str, Any] | ServiceConfig | None = None,
    options: Sequence[tuple[str, Any]] | Iterable[tuple[str, Any]] = (),
    compression: grpc.Compression | None = None,
) -> grpc.Channel:
    """``grpc.insecure_channel(target)`` with ``service_config``'s retries
    (see :func:`channel_options`) and the caller's ``options`` after them."""
    opts = channel_options(service_config) if service_config is not None else []
    return grpc.insecure_channel(target, options=[*opts, *options], compression=compression)
