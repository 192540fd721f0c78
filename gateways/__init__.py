"""Vendor gateways: one small REST shim per telephony platform, over one shared layer."""
