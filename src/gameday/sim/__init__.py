"""The vLLM-compatible inference simulator (``gameday sim serve``)."""
