"""The engine: the runner that plays a scenario through its phases, and its plan."""
