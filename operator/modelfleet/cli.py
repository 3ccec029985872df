"""The ``modelfleet`` command line: generate CRDs, validate manifests, plan, run, simulate.

Each subcommand is a thin wrapper: it parses arguments, calls library code and maps errors
to a message on stderr and a non-zero exit status. Subcommands with heavy dependencies
import them lazily so that ``modelfleet validate`` works on the light core install.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from modelfleet.cli_bounds import (
    RUN,
    SIMULATE,
    refuse_bad_names,
    refuse_bad_numbers,
    refuse_same_port,
)
from modelfleet.cli_help import TidyGroup
from modelfleet.cli_layout import output_width, print_lines, wrap
from modelfleet.extras import missing_extra
from modelfleet.gateway.command import gateway as gateway_command

app = typer.Typer(
    name="modelfleet",
    help="Serve models on GPUs across clouds and regions within an SLO and a budget.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=TidyGroup,
    rich_markup_mode=None,
)
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

DEFAULT_CRD_DIRS = [Path("crds"), Path("charts/modelfleet/crds")]


def _fit_width() -> None:
    """Lay the output out in its width (``cli_layout.output_width``): 80 columns into a
    pipe or a file, not the width of the terminal the command was typed in."""
    for console in (out, err):
        console.width = output_width(console)


def _mark(console: Console, mark: str, style: str, text: str) -> None:
    """Print ``mark`` (styled) and ``text`` (plain) wrapped to the console's width at
    spaces only, continuation lines indented: a file name or a Kind/name is never split."""
    lines = [Text(line) for line in wrap(f"{mark} {text}", console.width)]
    lines[0].stylize(style, 0, len(mark))
    print_lines(console, lines)


# `modelfleet gateway`: the global OpenAI-compatible endpoint (modelfleet.gateway.command).
app.command(name="gateway")(gateway_command)


@app.command()
def crds(
    out_dir: Annotated[
        list[Path] | None,
        typer.Option("--out-dir", metavar="<dir>", help="Folder to write CRDs into (repeatable)."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the files differ from the models.")
    ] = False,
    stdout: Annotated[bool, typer.Option("--stdout", help="Print instead of writing.")] = False,
) -> None:
    """Generate the CustomResourceDefinitions from the API models.

    Writes crds/*.yaml and charts/modelfleet/crds/*.yaml by default (run from the
    repository root), printing each file written, or that all already match.
    """
    from modelfleet.api.crdgen import all_crds, render

    if stdout and (check or out_dir):  # --stdout printed and ignored the other silently
        err.print("[red]error:[/red] --stdout goes with neither --check nor --out-dir")
        raise typer.Exit(2)
    rendered = {name: render(crd) for name, crd in all_crds().items()}
    if stdout:
        out.print("---\n".join(rendered.values()), end="", markup=False, highlight=False)
        return
    stale = []
    wrote = 0
    folders = out_dir or DEFAULT_CRD_DIRS
    for folder in folders:
        if not check:  # a folder that is a file or cannot be made: one line, exit 2
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                reason = "exists and is not a folder" if folder.is_file() else exc.strerror or exc
                err.print(f"[red]error:[/red] {escape(str(folder))}: {escape(str(reason))}")
                raise typer.Exit(2) from exc
        for name, text in rendered.items():
            path = folder / name
            try:  # a file that cannot be read or written: one line, exit 2
                current = path.read_text() if path.exists() else ""
                if current == text:
                    continue
                if not check:
                    path.write_text(text)
            except (OSError, UnicodeDecodeError) as exc:
                reason = (exc.strerror or exc) if isinstance(exc, OSError) else "not UTF-8 text"
                err.print(f"[red]error:[/red] {escape(str(path))}: {escape(str(reason))}")
                raise typer.Exit(2) from exc
            if check:
                stale.append(path)
                diff = difflib.unified_diff(
                    current.splitlines(), text.splitlines(), str(path), "generated", lineterm=""
                )
                err.print("\n".join(list(diff)[:40]), markup=False, highlight=False)
            else:
                wrote += 1
                out.print(f"wrote {path}", markup=False, highlight=False)
    if stale:
        err.print(
            f"[red]{len(stale)} CRD file(s) differ from the models[/red]; run `modelfleet crds`"
        )
        raise typer.Exit(1)
    if check:
        out.print("CRDs are up to date with the models")
    elif not wrote:  # all up to date: say so, rather than print nothing
        where = ", ".join(f"{folder}/" for folder in folders)
        _fit_width()  # a sentence: wrapped at spaces to the output's width, never a name
        print_lines(
            out, wrap(f"CRDs in {where} already match the models: nothing written", out.width)
        )


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Manifest files or folders.")],
) -> None:
    """Validate ModelDeployment, FleetCluster and ModelRoute manifests and gateway
    static endpoints files.

    Checks each document against the pydantic models, the generated CRD schema and its CEL
    rules, exactly as the operator and the API server would; then the documents given
    together: two ModelRoutes claiming one model name, routes naming deployments absent
    from the files (when ModelDeployments are given). A static endpoints file gets the
    gateway's start-up check; a capacity profile patch (``modelfleet profile --out``) the
    API model's rules for a profile. Every file is checked even when one does not parse; empty
    files are reported; documents that conflict, as above, are invalid. Exit status: 0 when
    every document is valid; 1 when a document is invalid; 2 when a path does not exist, a
    file cannot be loaded (not YAML, not a mapping) or no document was found (2 wins over 1).
    """
    from modelfleet.api.advice import deployment_advice
    from modelfleet.api.modeldeployment import ModelDeployment
    from modelfleet.api.validation import (
        ManifestLoadError,
        load_file,
        manifest_files,
        validate_document,
    )
    from modelfleet.cli_validate import (
        check_profile_patch,
        check_set,
        check_static_file,
        looks_like_profile_patch,
        looks_like_static_file,
    )

    _fit_width()
    files: list[Path] = []
    missing = 0
    for path in paths:  # a path that does not exist must not hide the others' errors
        try:
            files += manifest_files([path])
        except ManifestLoadError as exc:
            missing += 1
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
    count = failures = broken = 0
    valid = []
    for file in files:
        try:
            docs = load_file(file)
        except ManifestLoadError as exc:
            broken += 1
            err.print(f"[red]✗[/red] {escape(str(exc))}", highlight=False)
            continue
        if not docs:
            err.print(f"[yellow]![/yellow] {escape(str(file))}: empty (no YAML documents)")
        for doc in docs:
            count += 1
            if looks_like_static_file(doc.data):
                catalog, found = check_static_file(doc)
                for line in found.notes:
                    err.print(f"[yellow]![/yellow] {escape(line)}", highlight=False)
                for line in found.errors:
                    err.print(f"[red]✗[/red] {escape(line)}", highlight=False)
                failures += bool(found.errors)
                if catalog is not None and not found.errors:
                    what = (
                        f"static endpoints file: {len(catalog.deployments)} deployment(s), "
                        f"{len(catalog.models)} model name(s)"
                    )
                    _mark(out, "✓", "green", f"{doc.source} ({what})")
                continue
            if looks_like_profile_patch(doc.data):  # what `modelfleet profile --out` writes
                n, problems = check_profile_patch(doc)
                for line in problems:
                    err.print(f"[red]✗[/red] {escape(line)}", highlight=False)
                failures += bool(problems)
                if not problems:
                    what = f"spec.capacityProfiles patch: {n} profile(s), for kubectl patch"
                    _mark(out, "✓", "green", f"{doc.source} ({what})")
                continue
            errors = validate_document(doc)
            if errors:
                failures += 1
                for error in errors:
                    err.print(f"[red]✗[/red] {escape(str(error))}", highlight=False)
            else:
                valid.append(doc)
                # "(document 1," kept whole: the no-break space (cli_layout.wrap)
                _mark(out, "✓", "green", doc.label.replace("(document ", "(document\u00a0"))
                if doc.data.get("kind") == "ModelDeployment":
                    md = ModelDeployment.model_validate(doc.data)
                    for line in deployment_advice(md):  # valid, but likely not meant
                        err.print(f"[yellow]![/yellow] {escape(doc.label)}: {escape(line)}")
    together = check_set(valid)
    for line in together.notes:
        err.print(f"[yellow]![/yellow] {escape(line)}", highlight=False)
    for line in together.errors:
        err.print(f"[red]✗[/red] {escape(line)}", highlight=False)
    if count == 0 and not broken and not missing:
        where = ", ".join(str(p) for p in paths)
        err.print(f"[red]error:[/red] no YAML documents found in {escape(where)}")
        raise typer.Exit(2)
    if failures or broken or missing or together.errors:
        parts = [f"{failures} of {count} document(s) invalid"] if failures else []
        parts += [f"{len(together.errors)} problem(s) across documents"] if together.errors else []
        parts += [f"{broken} file(s) could not be loaded"] if broken else []
        parts += [f"{missing} path(s) not found"] if missing else []
        err.print(", ".join(parts))
        raise typer.Exit(2 if broken or missing else 1)
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
    now: Annotated[
        str | None,
        typer.Option("--now", metavar="<time>", help="Plan as of this ISO 8601 time."),
    ] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="<format>", help="table or json.")
    ] = "table",
) -> None:
    """Show what modelfleet would do for a deployment: replicas, placements, cost, reasons."""
    from modelfleet.cli_plan import plan_command

    if output not in ("table", "json"):
        err.print(f"[red]error:[/red] -o: expected table or json, got {escape(output)}")
        raise typer.Exit(2)
    fmt: Literal["table", "json"] = "json" if output == "json" else "table"
    _fit_width()
    code = plan_command(deployment, fleet, metrics=metrics, now=now, output=fmt, out=out, err=err)
    if code:
        raise typer.Exit(code)


from modelfleet.cli_profile import profile_command  # noqa: E402 - registered beside the rest

app.command("profile")(profile_command)


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def serve(ctx: typer.Context) -> None:
    """Run the built-in OpenAI-compatible inference server (needs the serving extra).

    Takes the flags of `python -m modelfleet.serving` (`modelfleet serve --help` lists them).
    """
    try:
        from modelfleet.serving.server import main as serve_main
    except ImportError as exc:
        hint = missing_extra("modelfleet serve", "serving", exc.name or str(exc))
        err.print(f"[red]error:[/red] {escape(hint)}", highlight=False)  # [serving] is no markup
        raise typer.Exit(2) from exc
    raise typer.Exit(serve_main(ctx.args))


@app.command()
def run(
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            metavar="<namespace>",
            help="Serve ModelDeployments in this namespace (repeatable).",
        ),
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Serve every namespace (default).")
    ] = False,
    liveness_port: Annotated[int, typer.Option(help="Port of /healthz (0: none).")] = 8081,
    metrics_port: Annotated[int, typer.Option(help="Port of /metrics (0: none).")] = 9100,
    log_format: Annotated[str, typer.Option(metavar="<format>", help="json or text.")] = "text",
    interval: Annotated[
        float,
        typer.Option(metavar="<seconds>", help="Seconds between periodic reconciles, 2 to 86400."),
    ] = 15.0,
    probe_interval: Annotated[
        float, typer.Option(metavar="<seconds>", help="Seconds between cluster probes, 2 to 86400.")
    ] = 10.0,
    launch_timeout: Annotated[
        float,
        typer.Option(
            metavar="<seconds>",
            help="Seconds a grown node pool may take to get its nodes Ready before "
            "it counts as a stockout, 60 to 86400.",
        ),
    ] = 900.0,
    max_concurrent_reconciles: Annotated[
        int, typer.Option(metavar="<n>", help="ModelDeployment passes running at once.")
    ] = 16,
    planner: Annotated[
        list[str] | None,
        typer.Option(
            "--planner",
            metavar="<key=value>",
            help="A planner setting, repeatable (e.g. stockoutInitialSeconds=180, "
            "spotReturnAfterSeconds=600); see docs/operations.md.",
        ),
    ] = None,
    metrics_namespace_label: Annotated[
        str | None,
        typer.Option(
            "--metrics-namespace-label",
            metavar="<label>",
            help="Prometheus label holding the scraped pod's namespace (e.g. namespace): "
            "a deployment's signals then come only from pods in its own namespace; see "
            "docs/metrics.md.",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs (kopf's too).")
    ] = False,
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
    refuse_bad_names(err, "--namespace", "namespace", namespace or ())
    refuse_bad_numbers(err, RUN, locals())  # before the hub is contacted (modelfleet.cli_bounds)
    refuse_same_port(err, ("--liveness-port", liveness_port), ("--metrics-port", metrics_port))
    from modelfleet.run_errors import StartupError, check_hub, check_operator_extras

    try:  # one line on what is wrong instead of tracebacks and kopf's retries
        check_operator_extras()
    except StartupError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from exc
    from modelfleet.reconciler import ReconcilerSettings
    from modelfleet.runtime import planner_settings

    try:
        planned = planner_settings(planner or [])
    except ValueError as exc:
        err.print(f"[red]error:[/red] --planner: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    from modelfleet.metrics.queries import QuerySettings, SelectorLabels

    try:
        queries = QuerySettings(selector=SelectorLabels(pod_namespace=metrics_namespace_label))
    except ValueError as exc:
        err.print(
            f"[red]error:[/red] --metrics-namespace-label: {escape(str(exc))}", highlight=False
        )
        raise typer.Exit(2) from None
    try:
        asyncio.run(check_hub())
    except StartupError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from exc
    from modelfleet.run import RunOptions, configure_logging, run_operator
    from modelfleet.runtime import RunSettings

    level = os.environ.get("MODELFLEET_LOG_LEVEL", "").lower()
    configure_logging(json_format=log_format == "json", verbose=verbose or level == "debug")
    options = RunOptions(
        namespaces=tuple(namespace or ()),
        liveness_port=liveness_port or None,
        metrics_port=metrics_port or None,
        settings=RunSettings(
            interval_seconds=interval,
            probe_interval_seconds=probe_interval,
            max_concurrent_reconciles=max_concurrent_reconciles,
            reconciler=ReconcilerSettings(launch_timeout_seconds=launch_timeout, planner=planned),
            queries=queries,
        ),
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
        float | None,
        typer.Option(
            "--hours",
            help="Simulate only the first H hours, 1/60 (a minute) or more (longer than the "
            "scenario: all of it).",
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            metavar="<policy>",
            help="Policies to run (repeatable): modelfleet, static-peak, hpa-failover, oracle, "
            "modelfleet-on-demand, modelfleet-no-standby. Default: modelfleet.",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            help="Policies simulated at once, in worker processes (same report for any "
            "value). Default: the CPU cores.",
        ),
    ] = None,
) -> None:
    """What-if: simulate outages, stockouts, spot reclaims and bursts on virtual time.

    Runs a scenario through the real decision path and reports SLO attainment, cost and
    recovery times.
    """
    try:
        from modelfleet.sim import ScenarioError, default_scenario_path
        from modelfleet.sim import simulate as run_simulation
        from modelfleet.sim.output import print_summary
    except ImportError as exc:
        hint = missing_extra("modelfleet simulate", "sim", exc.name or str(exc))
        err.print(f"[red]error:[/red] {escape(hint)}", highlight=False)
        raise typer.Exit(2) from exc
    from modelfleet.sim.policies import POLICIES
    from modelfleet.sim.runner import default_jobs
    from modelfleet.sim.scenario import load_scenario

    names = policy or ["modelfleet"]
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        known = ", ".join(POLICIES)
        err.print(
            f"[red]error:[/red] unknown policy {escape(', '.join(unknown))} (known: {known})",
            highlight=False,
        )
        raise typer.Exit(2)
    # --seed: before the scenario is read, else the scenario file would get the blame.
    refuse_bad_numbers(err, SIMULATE, locals())
    if out_dir is not None:  # before the run, not after it: a bad --out must not lose it
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = "exists and is not a folder" if out_dir.exists() else exc.strerror
            err.print(f"[red]error:[/red] --out {escape(str(out_dir))}: {reason}")
            raise typer.Exit(2) from exc
        for output in ("report.json", "timeline.csv", "report.png"):
            target = out_dir / output
            if target.exists() and not target.is_file():
                err.print(f"[red]error:[/red] --out: {escape(str(target))} is not a file")
                raise typer.Exit(2)
        if not os.access(out_dir, os.W_OK):
            err.print(f"[red]error:[/red] --out {escape(str(out_dir))}: not writable")
            raise typer.Exit(2)
    try:
        if hours is not None:
            length = load_scenario(scenario or default_scenario_path()).spec.duration_hours
            if hours > length:
                err.print(
                    f"note: --hours {hours:g} is longer than the scenario ({length:g} h); "
                    f"simulating all {length:g} h"
                )
                hours = None
        result = run_simulation(
            scenario,
            policies=names,  # type: ignore[arg-type]
            compare=compare,
            seed=seed,
            hours=hours,
            out=out_dir,
            jobs=jobs or default_jobs(),
        )
    except ScenarioError as exc:
        for line in exc.errors:
            err.print(f"[red]✗[/red] {escape(line)}", highlight=False)
        raise typer.Exit(2) from exc
    except FileNotFoundError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    _fit_width()
    print_summary(result, out)
    if out_dir is not None:
        out.print(
            f"wrote {out_dir / 'report.json'}, timeline.csv and report.png",
            markup=False,
            highlight=False,
        )
