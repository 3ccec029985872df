"""The ``modelfleet`` command line: generate CRDs, validate manifests, plan, run, simulate.

Each subcommand is a thin wrapper: it parses arguments, calls library code and maps errors
to a message on stderr and a non-zero exit status. Subcommands with heavy dependencies
import them lazily so that ``modelfleet validate`` works on the light core install.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    name="modelfleet",
    help="Serve models on GPUs across clouds and regions within an SLO and a budget.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

DEFAULT_CRD_DIRS = [Path("crds"), Path("charts/modelfleet/crds")]


@app.command()
def crds(
    out_dir: Annotated[
        list[Path] | None,
        typer.Option("--out-dir", help="Folder to write CRDs into (repeatable)."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the files differ from the models.")
    ] = False,
    stdout: Annotated[bool, typer.Option("--stdout", help="Print instead of writing.")] = False,
) -> None:
    """Generate the CustomResourceDefinitions from the API models.

    Writes crds/*.yaml and charts/modelfleet/crds/*.yaml by default.
    """
    from modelfleet.api.crdgen import all_crds, render

    rendered = {name: render(crd) for name, crd in all_crds().items()}
    if stdout:
        out.print("---\n".join(rendered.values()), end="", markup=False, highlight=False)
        return
    stale = []
    for folder in out_dir or DEFAULT_CRD_DIRS:
        for name, text in rendered.items():
            path = folder / name
            current = path.read_text() if path.exists() else ""
            if current == text:
                continue
            if check:
                stale.append(path)
                diff = difflib.unified_diff(
                    current.splitlines(), text.splitlines(), str(path), "generated", lineterm=""
                )
                err.print("\n".join(list(diff)[:40]), markup=False, highlight=False)
            else:
                folder.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                out.print(f"wrote {path}")
    if stale:
        err.print(
            f"[red]{len(stale)} CRD file(s) differ from the models[/red]; run `modelfleet crds`"
        )
        raise typer.Exit(1)
    if check:
        out.print("CRDs are up to date with the models")


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Manifest files or folders.")],
) -> None:
    """Validate ModelDeployment and FleetCluster manifests.

    Checks each document against the pydantic models, the generated CRD schema and its CEL
    rules, exactly as the operator and the API server would. Exits 1 on any error.
    """
    from modelfleet.api.validation import ManifestLoadError, iter_documents, validate_document

    count = 0
    failures = 0
    try:
        for doc in iter_documents(paths):
            count += 1
            errors = validate_document(doc)
            if errors:
                failures += 1
                for error in errors:
                    err.print(f"[red]✗[/red] {escape(str(error))}", highlight=False)
            else:
                out.print(f"[green]✓[/green] {escape(doc.label)}", highlight=False)
    except ManifestLoadError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    if count == 0:
        err.print("[red]error:[/red] no YAML documents found")
        raise typer.Exit(2)
    if failures:
        err.print(f"{failures} of {count} document(s) invalid")
        raise typer.Exit(1)
    out.print(f"{count} document(s) valid")


@app.command()
def plan(
    deployment: Annotated[Path, typer.Argument(help="ModelDeployment manifest (YAML).")],
    fleet: Annotated[
        Path, typer.Option("--fleet", help="FleetCluster manifest file or folder of them.")
    ],
    metrics: Annotated[
        Path | None, typer.Option("--metrics", help="Observed SLO signals (YAML, see docs).")
    ] = None,
    now: Annotated[str | None, typer.Option("--now", help="Plan as of this ISO 8601 time.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
) -> None:
    """Show what modelfleet would do for a deployment: replicas, placements, cost, reasons."""
    from modelfleet.cli_plan import plan_command

    if output not in ("table", "json"):
        err.print(f"[red]error:[/red] -o: expected table or json, got {escape(output)}")
        raise typer.Exit(2)
    fmt: Literal["table", "json"] = "json" if output == "json" else "table"
    code = plan_command(deployment, fleet, metrics=metrics, now=now, output=fmt, out=out, err=err)
    if code:
        raise typer.Exit(code)


from modelfleet.cli_profile import profile_command  # noqa: E402 - registered beside the rest

app.command("profile")(profile_command)


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())


@app.command()
def run(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Serve ModelDeployments in this namespace."),
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Serve every namespace (default).")
    ] = False,
    liveness_port: Annotated[int, typer.Option(help="Port of /healthz (0: none).")] = 8081,
    metrics_port: Annotated[int, typer.Option(help="Port of /metrics (0: none).")] = 9100,
    log_format: Annotated[str, typer.Option(help="json or text.")] = "text",
    interval: Annotated[float, typer.Option(help="Seconds between periodic reconciles.")] = 15.0,
    probe_interval: Annotated[float, typer.Option(help="Seconds between cluster probes.")] = 10.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the operator against the current cluster (in-cluster or $KUBECONFIG)."""
    import asyncio
    import os

    if namespace and all_namespaces:
        err.print("[red]error:[/red] --namespace and --all-namespaces are exclusive")
        raise typer.Exit(2)
    if log_format not in ("json", "text"):
        err.print("[red]error:[/red] --log-format must be json or text")
        raise typer.Exit(2)
    from modelfleet.run import RunOptions, configure_logging, run_operator
    from modelfleet.runtime import RunSettings

    level = os.environ.get("MODELFLEET_LOG_LEVEL", "").lower()
    configure_logging(json_format=log_format == "json", verbose=verbose or level == "debug")
    options = RunOptions(
        namespaces=tuple(namespace or ()),
        liveness_port=liveness_port or None,
        metrics_port=metrics_port or None,
        settings=RunSettings(interval_seconds=interval, probe_interval_seconds=probe_interval),
    )
    asyncio.run(run_operator(options))


@app.command()
def simulate(
    scenario: Annotated[
        Path | None,
        typer.Argument(help="Scenario file (TOML); default: examples/scenarios/default.toml."),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare", help="Also run the static-peak, hpa-failover and oracle baselines."
        ),
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write report.json, timeline.csv and report.png here."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Override the scenario's seed.")
    ] = None,
    hours: Annotated[
        float | None, typer.Option("--hours", help="Simulate only the first H hours.")
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help="Policies to run (repeatable): modelfleet, static-peak, hpa-failover, oracle, "
            "modelfleet-on-demand, modelfleet-no-standby. Default: modelfleet.",
        ),
    ] = None,
) -> None:
    """What-if: run a scenario (outages, stockouts, spot reclaims, bursts) on virtual time
    through the real decision path, and report SLO attainment, cost and recovery times."""
    from modelfleet.sim import ScenarioError
    from modelfleet.sim import simulate as run_simulation
    from modelfleet.sim.output import print_summary
    from modelfleet.sim.policies import POLICIES

    names = policy or ["modelfleet"]
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        err.print(f"[red]error:[/red] unknown policy {escape(', '.join(unknown))}")
        raise typer.Exit(2)
    if hours is not None and hours <= 0:
        err.print("[red]error:[/red] --hours must be positive")
        raise typer.Exit(2)
    try:
        result = run_simulation(
            scenario,
            policies=names,  # type: ignore[arg-type]
            compare=compare,
            seed=seed,
            hours=hours,
            out=out_dir,
        )
    except ScenarioError as exc:
        for line in exc.errors:
            err.print(f"[red]✗[/red] {escape(line)}", highlight=False)
        raise typer.Exit(2) from exc
    except FileNotFoundError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    print_summary(result, out)
    if out_dir is not None:
        out.print(f"wrote {out_dir / 'report.json'}, timeline.csv and report.png")
