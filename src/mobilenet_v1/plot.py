"""``mobilenet-v1 plot``: loss, learning rate, top-1 and gradient norm of one or more runs against the epoch.

Reads each run folder's ``metrics.jsonl`` (and its ``config.yaml``, for ``clip_grad_norm``). The gradient
norm's panel is there where a run recorded one (``train`` does, at every logged step). Each run keeps one
colour in every panel and its name is written at the end of its curves, so overlaid runs read without a
legend. matplotlib is an optional extra (``pip install 'mobilenet-v1[plot]'``), imported only here; the
figure is drawn with the Agg canvas directly, so no pyplot state or display is involved.
"""
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from .checkpoint import RUN_CONFIG, atomic_write, check_output, run_folder
from .config import CommandParser, whole_number
from .runtime import plural, shown_name
from .tracking import METRICS_FILE, read_metrics

WIDTH_IN, HEIGHT_IN = 12.0, 3.6  # three panels in a row: wide enough for a README
PANEL_IN = 4.0  # the width a fourth panel (the gradient norm) adds
LABEL_ROOM = 0.30  # share of the x range kept free right of the curves for the run names
# What every record drawn needs; top_1 is drawn where an epoch record has it (an eval record on its own: always).
PLOTTED_KEYS = {"step": ("epoch", "loss", "lr"), "epoch": ("epoch", "mean_loss", "lr"), "eval": ("epoch", "top_1")}

# Print quality is 300 to 600; at 100,000 the canvas ran out of memory (an error naming batch_size and image_size).
MAX_DPI = 1200


def _matplotlib():
    """matplotlib's figure and canvas; without the plot extra, its ModuleNotFoundError, which the command
    says in one line naming the extra (runtime.missing_extra)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return Figure, FigureCanvasAgg


def run_names(run_dirs: Sequence[str]) -> List[str]:
    """Short names that tell the runs apart: the folder name, with parents added while two folders' are
    equal. A folder given again (``plot r1 r1``, ``r1 ./r1/``) is ``r1 #2`` the second time: no path tells
    the two apart (both curves were labelled alike, and the summary, by name, held one of them)."""
    parts = [os.path.normpath(os.path.abspath(d)).split(os.sep) for d in run_dirs]
    folders = list(dict.fromkeys(tuple(p) for p in parts))  # each folder once, in order
    depth = 1
    while True:
        short = {p: shown_name("/".join(p[-depth:])) for p in folders}
        if len(set(short.values())) == len(folders) or depth >= max(len(p) for p in folders):
            break
        depth += 1
    names: List[str] = []
    for p in parts:
        name, again = short[tuple(p)], 1
        while name in names:
            again += 1
            name = f"{short[tuple(p)]} #{again}"
        names.append(name)
    return names


def _spread(ys: List[float], gap: float) -> List[float]:
    """Move the label positions ``ys`` (display units) apart by at least ``gap``, keeping their order."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    out = list(ys)
    for a, b in zip(order, order[1:]):
        if out[b] - out[a] < gap:
            out[b] = out[a] + gap
    # Centre the block on the original positions so labels do not all drift upwards.
    shift = (sum(ys) - sum(out)) / len(ys) if ys else 0.0
    return [y + shift for y in out]


def _label_ends(ax, ends: List[Tuple[float, float, str, Any]], dpi: float, fontsize: float) -> None:
    """Write each run's name just right of its curve's last point."""
    if not ends:
        return
    to_display = ax.transData.transform
    ys = [float(to_display((x, y))[1]) for x, y, _, _ in ends]
    placed = _spread(ys, gap=fontsize * 1.25 * dpi / 72.0)
    for (x, y, text, colour), y0, y1 in zip(ends, ys, placed):
        ax.annotate(text, xy=(x, y), xytext=(5, (y1 - y0) * 72.0 / dpi), textcoords="offset points",
                    color=colour, fontsize=fontsize, va="center", ha="left", annotation_clip=False,
                    bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})


def _log_scale(ax) -> None:
    """A logarithmic y axis for ``ax`` where all its curves are positive, labelled 0.4, not 4x10^-1. A missing
    point (NaN: a skipped non-finite step's null loss) is a gap on either axis: it does not choose the scale."""
    from matplotlib.ticker import FuncFormatter

    ys = [float(y) for line in ax.get_lines() for y in line.get_ydata() if not math.isnan(y)]
    if not ys or not all(y > 0 for y in ys):
        return
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    low, high = ax.get_ylim()
    # Inside a decade every minor tick is labelled (matplotlib puts them at 1.2, 1.4, ... over a short range: those
    # rounded to 1 were left blank); over more, labelling each of 0.2, 0.3, ... 0.9 makes a smear: keep 2 and 5.
    def minor(v: float, _: Any) -> str:
        mantissa = v / 10 ** math.floor(math.log10(v))
        return f"{v:g}" if high / low < 10 or min(abs(mantissa - 2), abs(mantissa - 5)) < 1e-6 else ""

    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def clip_threshold(run_dir: str) -> float:
    """The ``clip_grad_norm`` a run folder's config.yaml records (0: none, or no readable file: the
    threshold is a guide drawn beside the curve, not needed to draw it)."""
    try:
        with open(os.path.join(run_folder(run_dir), RUN_CONFIG), "r", encoding="utf-8") as f:
            value = (yaml.safe_load(f) or {}).get("clip_grad_norm", 0.0)
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return 0.0
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else 0.0


def plot_runs(run_dirs: Sequence[str], out: str, dpi: int = 150, title: Optional[str] = None) -> Dict[str, Any]:
    """Draw the curves of ``run_dirs`` into the PNG ``out``; returns what was drawn per run."""
    if not run_dirs:
        raise ValueError("plot: give at least one run folder")
    # Errors name the file (and a record without a key drawn here, its line) before matplotlib loads.
    histories = [read_metrics(d, required=PLOTTED_KEYS) for d in run_dirs]
    for d, h in zip(run_dirs, histories):
        if not h["steps"] and all(r["kind"] != "epoch" for r in h["epochs"]):  # an eval record alone: no curve
            raise ValueError(f"{os.path.join(d, 'metrics.jsonl')}: holds no step or epoch records yet")
    Figure, FigureCanvasAgg = _matplotlib()
    from matplotlib.ticker import MaxNLocator
    names = run_names(run_dirs)
    # Gradient norms: a logged step's, where finite (a skipped non-finite step's is null: NaN).
    norms = [[(r["epoch"], r["grad_norm"]) for r in h["steps"] if isinstance(r.get("grad_norm"), (int, float))
              and math.isfinite(r["grad_norm"])] for h in histories]
    panels = 4 if any(norms) else 3
    width = WIDTH_IN + (panels - 3) * PANEL_IN
    fig = Figure(figsize=(width, HEIGHT_IN), dpi=dpi)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.06 * WIDTH_IN / width, right=0.99, bottom=0.15, top=0.80 if title else 0.88,
                        wspace=0.28)
    axes = list(fig.subplots(1, panels))
    ax_loss, ax_lr, ax_top1 = axes[:3]
    ax_norm = axes[3] if panels == 4 else None
    colours = [f"C{i % 10}" for i in range(len(run_dirs))]
    fontsize = 8.5
    ends: Dict[str, List[Tuple[float, float, str, Any]]] = {"loss": [], "lr": [], "top1": [], "norm": []}
    any_clip = False
    x_max = 0.0
    drawn = {}
    any_raw = False
    for name, colour, h, norm, run_dir in zip(names, colours, histories, norms, run_dirs):
        steps = h["steps"]
        epochs = [r for r in h["epochs"] if r["kind"] == "epoch"]  # an eval record alone has no loss to draw
        # Loss: the epoch mean (the per-step losses are single batches: shown faintly for texture).
        if steps:
            ax_loss.plot([r["epoch"] for r in steps], [r["loss"] for r in steps], color=colour, alpha=0.25,
                         linewidth=0.8)
        if epochs:
            xs, ys = [r["epoch"] for r in epochs], [r["mean_loss"] for r in epochs]
            ax_loss.plot(xs, ys, color=colour, linewidth=1.6, marker="o" if len(xs) <= 40 else None, markersize=2.5)
            ends["loss"].append((xs[-1], ys[-1], name, colour))
        lr_src = steps or epochs
        xs, ys = [r["epoch"] for r in lr_src], [r["lr"] for r in lr_src]
        ax_lr.plot(xs, ys, color=colour, linewidth=1.6, marker="o" if len(xs) == 1 else None, markersize=3)
        ends["lr"].append((xs[-1], ys[-1], name, colour))
        x_max = max(x_max, xs[-1])
        evals = [r for r in h["epochs"] if "top_1" in r]
        # The best checkpoint's evaluation (a tie: the earlier); one of non-finite outputs never is (train's rule).
        best = max((r for r in evals if not r.get("nonfinite_outputs")), key=lambda r: r["top_1"], default=None)
        if evals:
            xs, ys = [r["epoch"] for r in evals], [100.0 * r["top_1"] for r in evals]
            ax_top1.plot(xs, ys, color=colour, linewidth=1.6, marker="o", markersize=3)
            raw = [r for r in evals if "raw_top_1" in r]
            if raw:  # a run with --ema_decay: top_1 is the weight average's, dashed the trained weights'
                any_raw = True
                ax_top1.plot([r["epoch"] for r in raw], [100.0 * r["raw_top_1"] for r in raw], color=colour,
                             linewidth=1.0, linestyle="--", alpha=0.7)
            if best is not None:
                ax_top1.plot([best["epoch"]], [100.0 * best["top_1"]], marker="*", markersize=9, color=colour,
                             linestyle="none")
            ends["top1"].append((xs[-1], ys[-1], f"{name} {ys[-1]:.1f}%", colour))
        clip = clip_threshold(run_dir) if ax_norm is not None else 0.0
        if norm:
            xs, ys = [x for x, _ in norm], [y for _, y in norm]
            ax_norm.plot(xs, ys, color=colour, linewidth=1.0, marker="o" if len(xs) == 1 else None, markersize=3)
            ends["norm"].append((xs[-1], ys[-1], name, colour))
            if clip:  # above the line the step's gradients were scaled down to it
                any_clip = True
                ax_norm.axhline(clip, color=colour, linewidth=1.0, linestyle=":")
        drawn[name] = {"epochs": len(epochs), "steps": len(steps), "evaluations": len(evals),
                       "best_top_1": best["top_1"] if best else None, "grad_norms": len(norm),
                       "clip_grad_norm": clip}
    _log_scale(ax_loss)  # losses fall by orders of magnitude; a linear axis flattens the tail
    ax_loss.set_title("training loss (epoch mean; faint: logged steps)", fontsize=10)
    ax_lr.set_title("learning rate", fontsize=10)
    ax_top1.set_title("top-1 on the eval split, % (star: best" +
                      (")\ndashed: trained weights, solid: average" if any_raw else ")"), fontsize=10)
    if not ends["top1"]:
        ax_top1.text(0.5, 0.5, "no evaluations\n(train with --eval_interval N)", ha="center", va="center",
                     transform=ax_top1.transAxes, color="0.4")
    if ax_norm is not None:
        _log_scale(ax_norm)  # the first steps' norms are often an order of magnitude above the rest
        ax_norm.set_title("gradient norm (logged steps, before clipping" +
                          (")\ndotted: clip_grad_norm" if any_clip else ")"), fontsize=10)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.set_xlim(0, max(x_max, 1.0) * (1 + LABEL_ROOM))
        # Ticks only under the curves: the room on the right is for the run names.
        ax.set_xticks([t for t in MaxNLocator(nbins=6, integer=True).tick_values(0, max(x_max, 1.0))
                       if 0 <= t <= max(x_max, 1.0)])
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.tick_params(which="both", labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    if title:
        fig.suptitle(shown_name(title), fontsize=11)
    # Label positions are computed in display units: the limits and layout must be final first.
    fig.canvas.draw()
    _label_ends(ax_loss, ends["loss"], dpi, fontsize)
    _label_ends(ax_lr, ends["lr"], dpi, fontsize)
    _label_ends(ax_top1, ends["top1"], dpi, fontsize)
    if ax_norm is not None:
        _label_ends(ax_norm, ends["norm"], dpi, fontsize)
    with atomic_write(out) as f:  # an earlier picture of that name stays whole if the write fails
        fig.savefig(f, dpi=dpi, format="png")
    return {"out": out, "width": int(round(width * dpi)), "height": int(round(HEIGHT_IN * dpi)), "runs": drawn}


def main(argv: Sequence[str]) -> int:
    p = CommandParser(prog="mobilenet-v1 plot",
                      description="Loss, learning rate, top-1 and the gradient norm against the "
                                  "epoch, from the metrics.jsonl of one or more run folders, overlaid.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="a training run folder (save_checkpoint_path)")
    p.add_argument("--out", default="curves.png", help="the PNG to write (default curves.png)")
    p.add_argument("--dpi", type=whole_number, default=150,
                   help=f"pixels per inch of the {WIDTH_IN + PANEL_IN:g}x{HEIGHT_IN:g} inch figure, "
                        f"{WIDTH_IN:g} wide without gradient norms (default 150: 2400x540 pixels)")
    p.add_argument("--title", default=None, help="a title above the panels")
    a = p.parse_args(list(argv))
    if not 10 <= a.dpi <= MAX_DPI:
        p.error(f"--dpi must be from 10 to {MAX_DPI}, got {a.dpi}")
    # A folder, a training checkpoint named .png, another extension: refused before drawing, in one line with
    # status 1 as every command's output (another extension was argparse's usage and status 2).
    check_output("--out", a.out, suffix=".png")
    # A run's metrics.jsonl stands for its folder (whose name labels the curves).
    run_dirs = [os.path.dirname(os.path.abspath(d)) if os.path.isfile(d) and os.path.basename(d) == METRICS_FILE
                else d for d in a.run_dirs]
    result = plot_runs(run_dirs, a.out, a.dpi, a.title)
    for name, r in result["runs"].items():
        best = f", best top-1 {100 * r['best_top_1']:.2f}%" if r["best_top_1"] is not None else ""
        clip = f", clip_grad_norm {r['clip_grad_norm']:g}" if r["clip_grad_norm"] else ""
        print(f"{name}: {plural(r['epochs'], 'epoch')}, {plural(r['steps'], 'logged step')}, "
              f"{plural(r['evaluations'], 'evaluation')}{best}{clip}")
    print(f"wrote {a.out} ({result['width']}x{result['height']} pixels)")
    return 0
