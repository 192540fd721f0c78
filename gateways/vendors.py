"""The vendors a gateway process can speak, by the name used on the command line."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Protocol

from fastapi import APIRouter

from gateways.decider import Decider


class VendorRoutes(Protocol):
    """What each `gateways/<vendor>/routes.py` module provides."""

    DEFAULT_LISTEN: str

    def build_router(self, decider: Decider, env: Mapping[str, str]) -> APIRouter:
        """The vendor's HTTP routes; raises ValueError for invalid vendor configuration."""
        ...

    def render_refusal(
        self, query: Mapping[str, str], reason: str, status: int
    ) -> tuple[str, bytes]:
        """(content type, body) of a 413/431 in the vendor's error format (`limits.Refusal`)."""
        ...


# name on the command line → module with the routes (imported only when chosen).
VENDORS = {
    "aliyun-ivr": "gateways.aliyun_ivr.routes",
    "aliyun-ccc": "gateways.aliyun_ccc.routes",
    "huawei-odfs": "gateways.huawei_odfs.routes",
    "telnyx": "gateways.telnyx.routes",
}


def load(name: str) -> VendorRoutes:
    """Imports the routes module of a vendor."""
    module: VendorRoutes = importlib.import_module(VENDORS[name])
    return module


def default_listens() -> dict[str, str]:
    """Vendor name → its default listen address."""
    return {name: load(name).DEFAULT_LISTEN for name in VENDORS}
