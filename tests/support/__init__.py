"""Helpers shared by tests: running the real server as a child process."""
