"""Gateway configuration: flags over environment over defaults, and clear refusals."""

from __future__ import annotations

import pytest

from gateways.config import DEFAULT_DEADLINE_MS, DEFAULT_SERVER, parse_config

VENDORS = {"aliyun-ivr": "127.0.0.1:8081", "aliyun-ccc": "127.0.0.1:8082"}


def test_defaults() -> None:
    config = parse_config(VENDORS, ["aliyun-ivr"], env={})
    assert (config.listen, config.server, config.deadline_ms) == (
        "127.0.0.1:8081",
        DEFAULT_SERVER,
        DEFAULT_DEADLINE_MS,
    )
    assert config.fallback.mode == "transfer"


def test_environment_then_flags() -> None:
    env = {
        "DIALOGUE_SERVER": "127.0.0.1:6000",
        "DIALOGUE_DEADLINE_MS": "250",
        "DIALOGUE_FALLBACK": "hangup",
    }
    config = parse_config(VENDORS, ["aliyun-ccc"], env=env)
    assert (config.listen, config.server, config.deadline_ms, config.fallback.mode) == (
        "127.0.0.1:8082",
        "127.0.0.1:6000",
        250,
        "hangup",
    )
    flagged = parse_config(
        VENDORS, ["aliyun-ccc", "--server", "127.0.0.1:7000", "--listen", "127.0.0.1:0"], env=env
    )
    assert (flagged.server, flagged.listen) == ("127.0.0.1:7000", "127.0.0.1:0")


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["nokia"], {}),
        (["aliyun-ivr", "--deadline-ms", "0"], {}),
        (["aliyun-ivr"], {"DIALOGUE_FALLBACK": "pray"}),
    ],
)
def test_invalid_configuration_is_refused(argv: list[str], env: dict[str, str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_config(VENDORS, argv, env=env)
    assert exited.value.code == 2


def test_a_bad_variable_is_refused_by_its_own_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config(VENDORS, ["aliyun-ivr"], env={"DIALOGUE_MAX_BODY_BYTES": "ten"})
    assert "DIALOGUE_MAX_BODY_BYTES='ten' is not valid" in capsys.readouterr().err


def test_booleans_agree_and_empty_means_default() -> None:
    env = {"DIALOGUE_SERVER_TLS": "on", "DIALOGUE_DEADLINE_MS": " ", "DIALOGUE_FALLBACK": ""}
    config = parse_config(VENDORS, ["aliyun-ivr"], env=env)
    assert (config.server_tls, config.deadline_ms, config.fallback.mode) == (
        True,
        DEFAULT_DEADLINE_MS,
        "transfer",
    )
