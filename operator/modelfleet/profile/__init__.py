"""``modelfleet profile``: measure what one replica sustains within the SLO.

``mix`` draws request lengths (synthetic log-normal or a trace file), ``loadgen`` drives an
OpenAI-compatible streaming endpoint at a fixed rate and measures TTFT/TPOT per request,
``search`` climbs rates until a percentile breaks the objective and turns the highest good
rate into a capacity profile, ``command`` is the CLI with its table and progress bar.
"""
