"""``modelfleet profile``: the command-line face of ``modelfleet.profile`` (kept out of
``cli.py`` so the command's many options stay in one place; ``cli.py`` registers it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from modelfleet.cli_bounds import PROFILE, refuse_bad_numbers, sweep_problem
from modelfleet.cli_layout import output_width
from modelfleet.extras import missing_extra


def profile_command(
    url: Annotated[
        str, typer.Argument(help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
    ],
    model: Annotated[str, typer.Option("--model", help="Model name the endpoint serves.")],
    gpu: Annotated[str, typer.Option("--gpu", help="GPU type of the replica, e.g. H100.")],
    gpu_count: Annotated[int, typer.Option("--gpu-count", help="GPUs per replica.")] = 1,
    ttft_p95_ms: Annotated[
        float | None, typer.Option("--ttft-p95-ms", help="TTFT p95 objective (ms).")
    ] = 200.0,
    tpot_p95_ms: Annotated[
        float | None, typer.Option("--tpot-p95-ms", help="TPOT p95 objective (ms).")
    ] = None,
    prompt_tokens: Annotated[
        float, typer.Option("--prompt-tokens", help="Median prompt tokens (synthetic mix).")
    ] = 512.0,
    output_tokens: Annotated[
        float, typer.Option("--output-tokens", help="Median output tokens (synthetic mix).")
    ] = 128.0,
    sigma: Annotated[
        float, typer.Option("--sigma", help="Log-normal sigma of both lengths, 0 (fixed) to 3.")
    ] = 0.0,
    trace: Annotated[
        Path | None,
        typer.Option("--trace", help="Take lengths from an Azure-format trace CSV instead."),
    ] = None,
    start_rate: Annotated[float, typer.Option("--start-rate", help="First rate (req/s).")] = 1.0,
    growth: Annotated[
        float, typer.Option("--growth", help="Rate multiplier per step, above 1, at most 100.")
    ] = 2.0,
    max_rate: Annotated[float, typer.Option("--max-rate", help="Highest rate tried.")] = 256.0,
    step_seconds: Annotated[
        float, typer.Option("--step-seconds", help="Seconds each rate is held, 1 or more.")
    ] = 30.0,
    refine: Annotated[
        int, typer.Option("--refine", help="Bisections after the first failing rate, 0 to 20.")
    ] = 3,
    arrivals: Annotated[
        str, typer.Option("--arrivals", help="poisson or uniform inter-arrival times.")
    ] = "poisson",
    api_key_env: Annotated[
        str, typer.Option("--api-key-env", help="Environment variable holding the API key.")
    ] = "OPENAI_API_KEY",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the profile (YAML fragment) here.")
    ] = None,
) -> None:
    """Load-test an endpoint at rising rates and write the capacity profile the operator
    reads: the highest rate whose TTFT p95 and TPOT p95 stay within the objectives."""
    from pydantic import ValidationError

    from modelfleet.api.profiles import CapacityProfileSpec
    from modelfleet.profile.command import EndpointError, ProfileRequest, run_profile, url_problem
    from modelfleet.profile.mix import Mix, read_trace

    err = Console(stderr=True, soft_wrap=True)
    problem = url_problem(url)
    if problem is not None:  # the client's own error was a traceback (or 'cannot connect')
        example = "e.g. http://127.0.0.1:8000/v1"
        err.print(f"[red]error:[/red] URL: {escape(problem)}; {example}", highlight=False)
        raise typer.Exit(2)
    try:  # what the written profile will carry, checked by the API model before any load
        CapacityProfileSpec.model_validate(
            {
                "gpu": gpu,
                "gpuCount": gpu_count,
                "prefillTokensPerSecond": 0,
                "decodeTokensPerSecond": 0,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        option = "--gpu-count" if "gpuCount" in first["loc"] else "--gpu"
        err.print(f"[red]error:[/red] {option}: {escape(first['msg'])}")
        raise typer.Exit(2) from exc
    if out_file is not None and (
        out_file.is_dir() or not out_file.parent.is_dir() or not os.access(out_file.parent, os.W_OK)
    ):
        err.print(f"[red]error:[/red] --out {escape(str(out_file))}: cannot write a file there")
        raise typer.Exit(2)
    if arrivals not in ("poisson", "uniform"):
        err.print(f"[red]error:[/red] --arrivals: poisson or uniform, got {escape(arrivals)}")
        raise typer.Exit(2)
    refuse_bad_numbers(err, PROFILE, locals())  # before any load is sent (modelfleet.cli_bounds)
    problem = sweep_problem(
        start_rate=start_rate, growth=growth, max_rate=max_rate, step_seconds=step_seconds
    )
    if problem is not None:
        err.print(f"[red]error:[/red] {escape(problem)}", highlight=False)
        raise typer.Exit(2)
    try:
        rows = read_trace(trace) if trace is not None else ()
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] --trace: {escape(str(exc))}")
        raise typer.Exit(2) from exc
    mix = Mix(prompt_tokens, sigma, output_tokens, sigma, rows)
    request = ProfileRequest(
        base_url=url,
        model=model,
        gpu=gpu,
        gpu_count=gpu_count,
        ttft_p95_ms=ttft_p95_ms,
        tpot_p95_ms=tpot_p95_ms,
        mix=mix,
        start_rate=start_rate,
        growth=growth,
        max_rate=max_rate,
        step_seconds=step_seconds,
        refinements=refine,
        arrivals="poisson" if arrivals == "poisson" else "uniform",
        api_key=os.environ.get(api_key_env, "none"),
    )
    try:
        console = Console(soft_wrap=True)
        console.width = output_width(console)  # 80 columns into a pipe (cli_layout)
        code = run_profile(request, out_file, console)
    except EndpointError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    except ImportError as exc:
        hint = missing_extra("modelfleet profile", "profile", exc.name or str(exc))
        err.print(f"[red]error:[/red] {escape(hint)}", highlight=False)  # [profile] is no markup
        raise typer.Exit(2) from exc
    if code:
        raise typer.Exit(code)
