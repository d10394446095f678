"""The vLLM-compatible inference simulator (``gameday sim serve``).

A real server process (FastAPI on uvicorn, as vLLM's own) that reacts to real faults by
real mechanisms: it binds its port before loading (a busy port fails with Errno 98), really
reads and checksums its model files, keeps its KV cache in real memory (GPU memory through
CUDA, or host memory standing in for it), and resolves its upstream dependency by name.

Modules: ``cli`` (commands), ``server`` (bind, uvicorn, signals), ``runtime`` (startup
sequence and state), ``api`` (OpenAI endpoints), ``engine`` and ``scheduler`` (continuous
batching over a paged KV cache), ``metrics``, ``model``, ``memory``, ``cuda``, ``upstream``,
``tokens``, ``options``, ``logs``.
"""

__all__: list[str] = []
