"""The Call Control client against the fake API: retries bounded in count and time, 4xx not
retried, 90018 counted, each command_id sent once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateways.telnyx.commands import CallControl, RetryPolicy
from tests.gateways.telnyx.fake_api import API_KEY, FakeTelnyx, serve_fake
from tests.support.ports import closed_port_address

CCID = "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg"
# No real waiting between attempts: the backoff is recorded, not slept.
FAST = RetryPolicy(attempts=4, attempt_timeout_s=5.0, first_backoff_s=0.1, max_backoff_s=0.3)


class FakeClock:
    """A clock that moves only when the client sleeps (so budgets are tested without waiting)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelnyx]:
    async with serve_fake() as served:
        yield served


def speak(command_id: str = "c1") -> dict[str, object]:
    return {"payload": "Hello.", "voice": "Telnyx.KokoroTTS.af", "command_id": command_id}


async def test_an_accepted_command_is_sent_once_with_the_api_key(fake: FakeTelnyx) -> None:
    control = CallControl(API_KEY, fake.base_url, FAST)
    result = await control.send(CCID, "speak", speak())
    again = await control.send(CCID, "speak", speak())
    await control.close()
    assert (result.status, result.attempts, again.status, again.attempts) == ("ok", 1, "ok", 0)
    assert [(r.call_control_id, r.command, r.status) for r in fake.received] == [
        (CCID, "speak", 200)
    ]
    assert control.counters == {"accepted": 1, "deduplicated": 1}


async def test_the_same_command_in_flight_twice_goes_out_once(fake: FakeTelnyx) -> None:
    control = CallControl(API_KEY, fake.base_url, FAST)
    fake.delay_next(0.3)
    first, second = await asyncio.gather(
        control.send(CCID, "speak", speak()), control.send(CCID, "speak", speak())
    )
    await control.close()
    assert first.ok
    assert second.ok
    assert len(fake.received) == 1


async def test_5xx_is_retried_with_growing_backoff_until_accepted(fake: FakeTelnyx) -> None:
    clock = FakeClock()
    control = CallControl(API_KEY, fake.base_url, FAST, sleep=clock.sleep, clock=clock)
    fake.fail_next(1, status=500)
    fake.fail_next(1, status=502)
    fake.fail_next(1, status=429)
    result = await control.send(CCID, "speak", speak())
    await control.close()
    assert (result.status, result.attempts) == ("ok", 4)
    assert clock.slept == [0.1, 0.2, 0.3]
    assert [r.status for r in fake.received] == [500, 502, 429, 200]
    assert [r.executed for r in fake.received] == [False, False, False, True]
    assert control.counters == {"retried": 3, "accepted": 1}


async def test_retries_stop_at_the_attempt_count(fake: FakeTelnyx) -> None:
    clock = FakeClock()
    control = CallControl(API_KEY, fake.base_url, FAST, sleep=clock.sleep, clock=clock)
    fake.fail_next(10, status=503)
    result = await control.send(CCID, "speak", speak())
    await control.close()
    assert (result.status, result.attempts, result.http_status) == ("failed", 4, 503)
    assert len(fake.received) == 4
    assert control.counters["failed"] == 1


async def test_retries_stop_when_the_time_budget_is_spent(fake: FakeTelnyx) -> None:
    clock = FakeClock()
    policy = RetryPolicy(attempts=100, first_backoff_s=1.0, max_backoff_s=4.0, budget_s=10.0)
    control = CallControl(API_KEY, fake.base_url, policy, sleep=clock.sleep, clock=clock)
    fake.fail_next(100, status=503)
    result = await control.send(CCID, "speak", speak())
    await control.close()
    assert result.status == "failed"
    assert sum(clock.slept) < policy.budget_s
    assert clock.slept == [1.0, 2.0, 4.0]
    assert len(fake.received) == 4


async def test_call_already_ended_is_not_retried(fake: FakeTelnyx) -> None:
    control = CallControl(API_KEY, fake.base_url, FAST)
    fake.hang_up(CCID)
    result = await control.send(CCID, "speak", speak())
    await control.close()
    assert (result.status, result.code, result.http_status) == ("call_ended", "90018", 422)
    assert len(fake.received) == 1
    assert control.counters == {"call_ended": 1}


async def test_other_4xx_are_refused_without_retry(fake: FakeTelnyx) -> None:
    control = CallControl("wrong key", fake.base_url, FAST)
    unauthorised = await control.send(CCID, "speak", speak("c1"))
    await control.close()
    control = CallControl(API_KEY, fake.base_url, FAST)
    invalid = await control.send(CCID, "speak", {"payload": "no voice", "command_id": "c2"})
    await control.close()
    assert (unauthorised.status, unauthorised.http_status) == ("refused", 401)
    assert (invalid.status, invalid.http_status, invalid.code) == ("refused", 422, "10015")
    assert "voice" in invalid.detail
    assert len(fake.received) == 2
    fake.problems.clear()  # the invalid body was the point of this test


async def test_timeouts_are_retried(fake: FakeTelnyx) -> None:
    # Only the first answer is slow; the second attempt has a whole second (a slow machine).
    policy = RetryPolicy(attempts=2, attempt_timeout_s=1.0, first_backoff_s=0.01)
    control = CallControl(API_KEY, fake.base_url, policy)
    fake.delay_next(3.0)
    result = await control.send(CCID, "speak", speak())
    await control.close()
    assert (result.status, result.attempts) == ("ok", 2)
    assert control.counters["retried"] == 1


async def test_an_unreachable_api_fails_after_bounded_attempts() -> None:
    clock = FakeClock()
    base = f"http://{closed_port_address()}/v2"
    control = CallControl(API_KEY, base, FAST, sleep=clock.sleep, clock=clock)
    result = await control.send(CCID, "speak", speak())
    await control.close()
    assert (result.status, result.attempts, result.http_status) == ("failed", 4, None)
    assert result.detail == "APIConnectionError"


async def test_execute_stops_at_the_first_command_that_does_not_go_through(
    fake: FakeTelnyx,
) -> None:
    control = CallControl(API_KEY, fake.base_url, FAST)
    fake.fail_next(1, status=422, code="90034", command="speak")
    results = await control.execute(
        CCID, [("speak", speak("c1")), ("hangup", {"command_id": "c2"})]
    )
    await control.close()
    assert [(r.name, r.status, r.code) for r in results] == [("speak", "refused", "90034")]
    assert [r.command for r in fake.received] == ["speak"]
