"""Developer scripts: `make demo` (scripts.demo) and `make run` (run-all.sh)."""
