"""The built-in inference server: OpenAI-compatible, streaming, continuously batching.

``modelfleet serve --model DIR_OR_URI`` (or ``python -m modelfleet.serving``) loads a
Hugging Face-format causal LM with transformers and serves it with torch; see
docs/serving.md. Needs the ``serving`` extra (torch, transformers, FastAPI, uvicorn);
nothing is imported here so that ``import modelfleet.serving`` stays cheap.

Modules: ``server`` (app and command line), ``api`` (routes), ``protocol`` (request
shapes), ``errors`` (OpenAI error answers), ``engine`` (continuous batching),
``kv_batch`` (the padded KV cache), ``detokenize`` (text and stop strings), ``loading``
(fetch and load), ``metrics``, ``settings``, ``tiny`` (random-weight test models).
"""
