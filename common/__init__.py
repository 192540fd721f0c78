"""Conventions shared by the server and the gateways: settings and JSON values as text.

Neither side imports the other; both import this package, so each convention has one home.
"""
