"""A service runs on uvloop unless SENSEI_UVLOOP turns it off."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from shared import event_loop


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_uvloop_is_the_default() -> None:
    assert issubclass(event_loop.run(_loop_type(), {}), uvloop.Loop)


@pytest.mark.parametrize("value", ["0", "false", "no", "NO "])
def test_the_setting_turns_it_off(value: str) -> None:
    loop_type = event_loop.run(_loop_type(), {"SENSEI_UVLOOP": value})
    assert not issubclass(loop_type, uvloop.Loop)
