"""The kernel every other layer stands on: events and their bus, the journal, undo records
and change sets, the extension registry, errors, input reading (size, encoding, YAML
bounds), redaction, and the process and cgroup helpers the tiers share.

It imports nothing else of gameday (``make lint`` enforces it with import-linter), so
any layer may use it and it never pulls a target, a fault or the runner in."""
