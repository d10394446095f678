"""The vLLM-compatible inference simulator (``gameday sim serve``).

A real server process (its own lean HTTP/1.1 server, answering as vLLM's uvicorn does)
that reacts to real faults by real mechanisms: it binds its port before loading (a busy
port fails with Errno 98), reads its model directory as vLLM does (the real safetensors
headers, every byte, no checksum: flipped bytes go unnoticed, as in vLLM), keeps its KV cache
in real memory (GPU memory through CUDA, or host memory standing in for it), and resolves
its upstream dependency by name.

Modules: ``cli`` (commands), ``server`` (bind, serve, signals), ``protocol`` (HTTP/1.1 on
asyncio and httptools), ``runtime`` (startup sequence and state), ``api`` (OpenAI
endpoints), ``engine`` and ``scheduler`` (continuous batching over a paged KV cache),
``metrics``, ``model``, ``memory``, ``cuda``, ``upstream``, ``tokens``, ``options``,
``logs``.
"""

__all__: list[str] = []
