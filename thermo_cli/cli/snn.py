"""``thermo snn``: attach a spiking network to a thermogram, feed it activations, inspect it.

The commands parse arguments, call :mod:`thermo_cli.operations.snn` and the store, and format the
result. Writers hold the file's lock for load → run → commit; the network's deltas go
through the thermogram's normal log and its state is saved in the file, so a failure
anywhere leaves the file exactly as it was.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from thermo_cli.cli._args import InputFileArg, finite
from thermo_cli.cli._common import EXIT_USAGE, err, print_json, progress, stdout_console
from thermo_cli.cli._io import named_file

if TYPE_CHECKING:
    from thermo_cli.engine.thermogram import Thermogram


class Center(StrEnum):
    running = "running"
    none = "none"


class Rate(StrEnum):
    fixed = "fixed"
    mean = "1/n"


MIN_BAR_ACTIVATIONS = 2000
"""Fewer activations than this finish too fast for a progress bar to help."""

FileArg = Annotated[
    str, typer.Argument(help="Thermogram file (.thermo).", show_default=False, callback=named_file)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
ActsOpt = Annotated[
    str,
    typer.Option(
        "--input",
        "-i",
        help=(
            "Activations: .npy or .npz [n, dim], .safetensors, a JSON 2-D array, JSONL of number "
            "lists, or '-' for stdin."
        ),
        show_default=False,
    ),
]
"""Where ``snn run`` and ``snn assign`` read activations (operations.snn.inputs.load_activations)."""
TensorOpt = Annotated[
    str | None,
    typer.Option(
        "--tensor", help="Array to read from an .npz or safetensors file holding several.", show_default=False
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Input format when the name does not say: npy, npz, safetensors, json or jsonl.",
        show_default=False,
    ),
]


def _check_container(path: str) -> None:
    """Only .thermo containers carry a network; refuse the crate's JSON files clearly."""
    from thermo_cli import store
    from thermo_cli.errors import RefusedError

    kind = store.sniff(path)
    if kind != "thermo":
        raise RefusedError(
            f"{path}: is a Rust-crate {kind} JSON file, which cannot hold a spiking "
            "network: convert it first with `thermo migrate OLD NEW`"
        )


def _load_network(path: str) -> tuple[Thermogram, Any]:
    from thermo_cli import store
    from thermo_cli.operations.snn.runner import load_network

    _check_container(path)
    tg = store.load(path, layers="lazy", log="tail")
    return tg, load_network(tg)


def _describe(net: Any) -> str:
    c = net.config
    mode = "ternary" if c.use_ternary else "continuous"
    learning = f"learning ({c.prototype_rate}, centring {c.center})" if c.learn_prototypes else "frozen"
    links = "any two concepts may associate" if c.learn_prototypes else f"{c.top_k} connections each"
    return (
        f"{c.num_neurons}-neuron {mode} network ({c.input_dim}-D inputs, {links}, "
        f"{learning} prototypes, seed {net.seed})"
    )


def _new_thermogram(path: str) -> Thermogram:
    from thermo_cli.engine.thermogram import Thermogram

    return Thermogram(name=Path(path).stem or "thermogram")


commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""

snn = typer.Typer(
    name="snn",
    help="The embedded spiking network that turns activation vectors into deltas.",
    no_args_is_help=True,
)
commands.add_typer(snn, name="snn")


@snn.command("init")
def init(
    file: FileArg,
    neurons: Annotated[int, typer.Option("--neurons", min=1, help="Number of neurons.")] = 100,
    dim: Annotated[int, typer.Option("--dim", min=1, help="Length of each activation vector.")] = 2048,
    top_k: Annotated[
        int | None,
        typer.Option(
            "--top-k",
            min=0,
            help="Connections per neuron, to the next TOP_K neurons "
            "[default: 10, at most --neurons minus 1].",
            show_default=False,
        ),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(
            "--spike-threshold",
            callback=finite,
            help="Activation a neuron must exceed to spike; also how close an "
            "input must be to a prototype to count as known.",
        ),
    ] = 0.5,
    ternary: Annotated[bool, typer.Option("--ternary", help="Ternary (-1/0/+1) weights.")] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            min=0,
            help="Seed of the initial prototypes [default: random, recorded].",
            show_default=False,
        ),
    ] = None,
    frozen: Annotated[
        bool,
        typer.Option(
            "--frozen-prototypes",
            help="Keep the initial random prototypes, the ring of connections and the weight_i_j "
            "keys (the Rust crate's behaviour) instead of learning concepts.",
        ),
    ] = False,
    center: Annotated[
        Center,
        typer.Option(
            "--center",
            help="Centre inputs by the running mean of all inputs ('running') or use them as "
            "given ('none'); learned concepts only.",
        ),
    ] = Center.running,
    rate: Annotated[
        Rate,
        typer.Option(
            "--prototype-rate",
            help="How far a concept moves toward an input it wins: 'fixed' (10 x stdp_lr x "
            "dopamine, tracks drift) or '1/n' (the n-th input moves it 1/n: the exact mean).",
        ),
    ] = Rate.fixed,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Replace a network the file already has.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Attach a new spiking network to FILE (created if it does not exist).

    Example: thermo snn init memory.thermo --neurons 100 --dim 2048 --seed 7
    """
    from thermo_cli import store
    from thermo_cli.operations.snn import SNNConfig
    from thermo_cli.operations.snn.runner import attach_network

    if top_k is not None and top_k >= neurons:
        err(
            f"thermo: error: --top-k {top_k} needs at least {top_k + 1} neurons (--neurons is "
            f"{neurons}): neuron i connects to neurons i+1 … i+TOP_K, never to itself"
        )
        raise typer.Exit(EXIT_USAGE)
    config = SNNConfig(
        num_neurons=neurons,
        input_dim=dim,
        top_k=min(10, neurons - 1) if top_k is None else top_k,
        spike_threshold=threshold,
        use_ternary=ternary,
        learn_prototypes=not frozen,
        center=center.value,
        prototype_rate=rate.value,
    )
    existed = Path(file).exists()
    if existed:
        _check_container(file)
    with store.edit(file, create=None if existed else _new_thermogram(file)) as tg:
        net = attach_network(tg, config, seed, replace=force)
    verb = "attached" if existed else "created"
    if json_out:
        print_json({"file": file, "created": verb == "created", "seed": net.seed, "config": config.to_dict()})
    err(f"{verb} {file} with a {_describe(net)}")


@snn.command("run")
def run(
    file: FileArg,
    input_: ActsOpt,
    reward: Annotated[
        float | None,
        typer.Option(
            "--reward", callback=finite, help="Add to dopamine first (speeds learning).", show_default=False
        ),
    ] = None,
    stress: Annotated[
        float | None,
        typer.Option(
            "--stress",
            callback=finite,
            help="Lower serotonin and raise norepinephrine by this first.",
            show_default=False,
        ),
    ] = None,
    focus: Annotated[
        float | None,
        typer.Option(
            "--focus",
            callback=finite,
            help="Add to acetylcholine first (more spreading).",
            show_default=False,
        ),
    ] = None,
    decay: Annotated[
        float,
        typer.Option(
            "--decay",
            callback=finite,
            min=0.0,
            max=1.0,
            help="After each activation, move the levels this fraction back to baseline.",
        ),
    ] = 0.0,
    tensor: TensorOpt = None,
    fmt: FormatOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; write nothing.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Feed activations through FILE's network and apply the resulting deltas to its log.

    Example: thermo snn run memory.thermo --input hidden.npy --reward 0.2 --decay 0.01
    """
    from thermo_cli import store
    from thermo_cli.operations.snn import runner
    from thermo_cli.operations.snn.inputs import load_activations

    if input_ == "-" and sys.stdin.isatty():
        err("thermo: error: reading activations from a terminal: pipe them in or name a file")
        raise typer.Exit(EXIT_USAGE)
    _check_container(file)
    with store.edit(file, dry_run=dry_run) as tg:
        net = runner.load_network(tg)
        dim = net.config.input_dim
        if input_ == "-":
            acts = load_activations(sys.stdin.buffer, dim, fmt=fmt, tensor=tensor)
        else:
            acts = load_activations(input_, dim, fmt=fmt, tensor=tensor)
        with progress("activations", len(acts), min_total=MIN_BAR_ACTIVATIONS) as bar:
            report = runner.run(
                tg,
                acts,
                reward=reward,
                stress=stress,
                focus=focus,
                decay=decay,
                dry_run=dry_run,
                progress=bar.advance,
            )
    if json_out:
        print_json({"file": file, **report.to_dict()})
    err(_run_summary(file, report))
    for warning in report.warnings:
        err(f"thermo: warning: {warning}")


@snn.command("assign")
def assign(
    file: FileArg,
    input_: ActsOpt,
    tensor: TensorOpt = None,
    fmt: FormatOpt = None,
    json_out: Annotated[
        bool, typer.Option("--json", help='One JSON object per row: {"row", "concept", "cosine"}.')
    ] = False,
) -> None:
    """Name the concept each input row is closest to (cosine), without changing FILE.

    Example: thermo snn assign memory.thermo --input hidden.npy --json
    """
    from thermo_cli.operations.snn import runner
    from thermo_cli.operations.snn.inputs import load_activations

    if input_ == "-" and sys.stdin.isatty():
        err("thermo: error: reading activations from a terminal: pipe them in or name a file")
        raise typer.Exit(EXIT_USAGE)
    tg, net = _load_network(file)
    dim = net.config.input_dim
    source: Any = sys.stdin.buffer if input_ == "-" else input_
    acts = load_activations(source, dim, fmt=fmt, tensor=tensor)
    rows = runner.assign(tg, acts)
    if json_out:
        for row in rows:
            print_json(row)
        return
    lines = (f"{r['row']}\t{r['concept'] or '-'}\t{r['cosine']:.4f}\n" for r in rows)
    sys.stdout.write("".join(lines))


@snn.command("stats")
def stats(file: InputFileArg, json_out: JsonOpt = False) -> None:
    """Firing rates, weight histogram, neuromodulator levels and learning counters of FILE's network.

    Example: thermo snn stats memory.thermo --json
    """
    from thermo_cli.operations.snn.stats import summarize

    _, net = _load_network(file)
    summary = summarize(net)
    if json_out:
        print_json({"file": file, **summary})
        return
    _print_stats(file, _describe(net), summary)


def _run_summary(file: str, report: Any) -> str:
    c = report.counters
    kinds = ", ".join(f"{n} {k}" for k, n in report.by_kind.items())
    verb = "would apply" if report.dry_run else "applied"
    target = "" if report.dry_run else f" to {file}"
    consolidated = (
        (f"; {report.consolidations} auto-consolidation{'s' * (report.consolidations != 1)}")
        if report.consolidations
        else ""
    )
    return (
        f"processed {report.activations} activation{'s' * (report.activations != 1)} "
        f"(ticks {report.tick_before + 1}-{report.tick_after}): {c['ticks_with_spikes']} spiked, "
        f"{c['recruits']} neuron{'s' * (c['recruits'] != 1)} recruited; {verb} {report.deltas} "
        f"delta{'s' * (report.deltas != 1)}{target}" + (f" ({kinds})" if kinds else "") + consolidated
    )


def _histogram_rows(hist: dict[str, Any]) -> list[tuple[str, str]]:
    edges, counts = hist["edges"], hist["counts"]
    rows = []
    for i, count in enumerate(counts):
        close = "]" if i == len(counts) - 1 else ")"
        rows.append((f"[{edges[i]:g}, {edges[i + 1]:g}{close}", str(count)))
    return rows


def _print_stats(file: str, description: str, s: dict[str, Any]) -> None:
    from rich.table import Table

    console = stdout_console()

    def line(text: str) -> None:
        console.print(text, soft_wrap=True, markup=False, highlight=False)

    def table(title: str, columns: tuple[str, str], rows: list[tuple[str, str]]) -> None:
        t = Table(title=title, title_justify="left")
        t.add_column(columns[0])
        t.add_column(columns[1], justify="right")
        for row in rows:
            t.add_row(*row)
        console.print(t)

    line(f"{file}: {description}")
    line(
        f"tick {s['tick']} ({s['simulated_ms'] / 1000:g} s simulated); "
        f"{s['spiking_tick_fraction']:.1%} of ticks spiked"
    )
    table("neuromodulators", ("level", "value"), [(k, f"{v:.3f}") for k, v in s["neuromod"].items()])

    rates = s["firing_rates"]
    table("firing rates", ("rate", "neurons"), _histogram_rows(rates["histogram"]))
    top = ", ".join(f"#{i} {r:.3f}" for i, r in rates["top"])
    line(
        f"firing rate mean {rates['mean']:.3f}, max {rates['max']:.3f} (target {rates['target']:g}); "
        f"most active: {top}"
    )

    w = s["weights"]
    if "histogram" in w:
        rows = _histogram_rows(w["histogram"])
    else:
        rows = [(label, str(w[name])) for name, label in (("neg", "-1"), ("zero", "0"), ("pos", "+1"))]
    table("weights", ("weight", "connections"), rows)

    concepts = s.get("concepts")
    if concepts:
        table(
            f"concepts ({len(concepts)}, most used first)",
            ("concept", "inputs (first-last tick)"),
            [(c["key"], f"{c['count']} ({c['first_seen']}-{c['last_seen']})") for c in concepts[:20]],
        )
    p, c = s["prototypes"], s["counters"]
    line(
        f"prototypes: {p['in_use']} in use, {p['recruited']} recruited, {p['updates']} updates "
        f"({'learning' if p['learning'] else 'frozen'}); STDP updates {c['stdp_updates']}, "
        f"deletes {c['deletes']}, spikes {c['spikes']}"
    )
