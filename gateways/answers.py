"""Rendering a decision in the vendor's format, with the fallback as the answer to a rendering bug."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from dialogue.v1 import dialogue_pb2 as pb
from gateways.fallback import FallbackPolicy, fallback_response

__all__ = ["render_or_fallback"]

Answer = TypeVar("Answer")


def render_or_fallback(
    render: Callable[[pb.DecideNextActionResponse, bool], Answer],
    response: pb.DecideNextActionResponse,
    policy: FallbackPolicy,
    call_id: str,
    log: logging.Logger,
) -> Answer:
    """`render(response, False)`; when that raises, logs it and renders the fallback decision.

    A rendering bug must not become a 500 or dead air: the caller hears the fallback, rendered by
    the vendor's own code like any decision. `render`'s second argument says it is rendering that
    rescue (Huawei marks such an answer). A fallback that cannot be rendered either raises.
    """
    try:
        return render(response, False)
    except Exception:
        log.exception("cannot render the decision for call %s; answering the fallback", call_id)
        return render(fallback_response(policy, "render error"), True)
