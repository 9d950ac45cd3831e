"""The report's figures as PNG bytes: each video's tracks over its first frame, the sample's
kinematics histograms and the sperm count over time.

Matplotlib is used through its object API (``Figure`` + the Agg canvas), never ``pyplot``: no
global state, no display, safe in threads and servers. Figures are small (about 650 px wide at
100 dpi) and use print-friendly colours; the grade colours are :data:`GRADE_COLOURS`, shared with
the annotated video (:mod:`active.analysis.annotate`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from active.analysis.grades import GRADE_LABELS, GRADES
from active.analysis.sample import DEBRIS, VideoAnalysis

#: RGB (0-255) per grade, and for sperm tracks without a grade; the annotated video uses the same.
GRADE_COLOURS: dict[str, tuple[int, int, int]] = {
    "rapid_progressive": (30, 170, 50),
    "slow_progressive": (20, 130, 230),
    "non_progressive": (245, 140, 0),
    "immotile": (215, 30, 30),
    "ungraded": (150, 150, 150),
}
#: Impurities: a dark neutral grey (dashed in the plots, thin in the video).
IMPURITY_COLOUR: tuple[int, int, int] = (70, 70, 70)
#: Label of the grey tracks (sperm tracks shorter than the 1 s a grade needs, or no µm/px).
UNGRADED_LABEL = "not graded"

DPI = 100
WIDTH_IN = 6.5


def grade_colour(grade: str | None) -> tuple[int, int, int]:
    """The RGB colour of a sperm track with ``grade`` (None: not graded)."""
    return GRADE_COLOURS.get(grade or "ungraded", GRADE_COLOURS["ungraded"])


def _mpl(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    return (rgb[0] / 255, rgb[1] / 255, rgb[2] / 255)


def speed_unit(unit: str) -> str:
    """Display unit of a speed for a length ``unit`` (``um`` or ``px``)."""
    return "µm/s" if unit == "um" else f"{unit}/s"


def length_unit(unit: str) -> str:
    return "µm" if unit == "um" else unit


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.05)
    return buf.getvalue()


def _new_figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _dimmed(frame: np.ndarray) -> np.ndarray:
    """The frame as a light grey image (so coloured tracks stand out, also when printed)."""
    img = np.asarray(frame, np.float32)
    grey = img.mean(axis=2) if img.ndim == 3 else img
    return (0.45 * grey + 0.55 * 255).clip(0, 255).astype(np.uint8)


def trajectories_png(frame_rgb: np.ndarray | None, video: VideoAnalysis,
                     um_per_px: float | None = None) -> bytes:
    """The video's tracks over its (dimmed) first frame, sperm coloured by grade, impurities
    dashed; a legend with the count per grade. Without a frame, a blank canvas of the video's
    size. With ``um_per_px``, a scale bar."""
    w, h = video.size
    fig = _new_figure(WIDTH_IN, WIDTH_IN * h / max(w, 1))
    ax = fig.add_axes((0, 0, 1, 1))
    if frame_rgb is not None:
        ax.imshow(_dimmed(frame_rgb), cmap="gray", vmin=0, vmax=255, extent=(0, w, h, 0),
                  interpolation="bilinear")
    else:
        ax.set_facecolor("white")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])

    segments: dict[str, list[np.ndarray]] = {}
    ends: dict[str, list[np.ndarray]] = {}
    for r in video.tracks:
        key = "impurity" if r.class_name != "sperm" else (r.grade or "ungraded")
        xy = np.asarray(r.track.xy_px, np.float64)
        segments.setdefault(key, []).append(xy)
        ends.setdefault(key, []).append(xy[-1])
    if "impurity" in segments:
        ax.add_collection(LineCollection(segments["impurity"], colors=[_mpl(IMPURITY_COLOUR)],
                                         linewidths=0.8, linestyles="dashed"))
    for key in ("ungraded", *reversed(GRADES)):
        if key in segments:
            colour = _mpl(GRADE_COLOURS[key])
            ax.add_collection(LineCollection(segments[key], colors=[colour], linewidths=1.2))
            e = np.array(ends[key])
            ax.scatter(e[:, 0], e[:, 1], s=6, c=[colour], linewidths=0)

    if um_per_px is not None and w > 0:
        _scale_bar(ax, w, h, um_per_px)

    graded_video = video.motility is not None
    handles = []
    for g in GRADES:
        n = len(segments.get(g, []))
        if graded_video or n:
            handles.append(Line2D([], [], color=_mpl(GRADE_COLOURS[g]), lw=2,
                                  label=f"{GRADE_LABELS[g]}: {n}"))
    n = len(segments.get("ungraded", []))
    label = f"{UNGRADED_LABEL} (< 1 s)" if graded_video else UNGRADED_LABEL
    handles.append(Line2D([], [], color=_mpl(GRADE_COLOURS["ungraded"]), lw=2,
                          label=f"sperm, {label}: {n}"))
    n_debris = sum(r.class_name == DEBRIS for r in video.tracks)
    n_other = len(segments.get("impurity", [])) - n_debris
    handles.append(Line2D([], [], color=_mpl(IMPURITY_COLOUR), lw=1, ls="--",
                          label=f"impurity: {n_other}" + (f", debris: {n_debris}" if n_debris
                                                           else "")))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=3,
              fontsize=8, frameon=False, handlelength=1.6, columnspacing=1.2)
    ax.set_title(f"{Path(video.source).name or 'video'}: tracks over "
                 f"{'the first frame' if frame_rgb is not None else 'a blank frame'}",
                 fontsize=9)
    return _png(fig)


def _scale_bar(ax: object, w: int, h: int, um_per_px: float) -> None:
    """A white-on-black bar of a round length (about a fifth of the width) bottom right."""
    target = w * um_per_px / 5
    nice = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000]
    length_um = max([v for v in nice if v <= target] or [nice[0]])
    px = length_um / um_per_px
    x1, y = w - 0.04 * w, h - 0.05 * h
    ax.plot([x1 - px, x1], [y, y], color="black", lw=3, solid_capstyle="butt")
    ax.text(x1 - px / 2, y - 0.02 * h, f"{length_um:g} µm", ha="center", va="bottom",
            fontsize=8, color="black")


def _kinematics_values(videos: list[VideoAnalysis]) -> dict[str, list[list[float]]]:
    """Per panel (vcl, vsl, lin), the values per stack (the four grades, then ungraded)."""
    keys = (*GRADES, "ungraded")
    out: dict[str, list[list[float]]] = {p: [[] for _ in keys] for p in ("vcl", "vsl", "lin")}
    for v in videos:
        for r in v.sperm_tracks:
            k = r.kinematics
            if k is None:
                continue
            i = keys.index(r.grade or "ungraded")
            out["vcl"][i].append(k.vcl)
            out["vsl"][i].append(k.vsl)
            if k.lin is not None:
                out["lin"][i].append(100.0 * k.lin)
    return out


def histograms_png(videos: list[VideoAnalysis]) -> bytes:
    """Histograms of VCL, VSL and LIN of every sperm track with kinematics (all videos), stacked
    by grade."""
    unit = videos[0].unit if videos else "px"
    values = _kinematics_values(videos)
    keys = (*GRADES, "ungraded")
    colours = [_mpl(GRADE_COLOURS[k]) for k in keys]
    fig = _new_figure(WIDTH_IN + 0.5, 2.4)
    axes = fig.subplots(1, 3)
    titles = {"vcl": f"VCL ({speed_unit(unit)})", "vsl": f"VSL ({speed_unit(unit)})",
              "lin": "LIN (%)"}
    for ax, panel in zip(axes, ("vcl", "vsl", "lin"), strict=True):
        stacks = values[panel]
        flat = [x for s in stacks for x in s]
        ax.set_title(titles[panel], fontsize=9)
        ax.tick_params(labelsize=7)
        if not flat:
            ax.text(0.5, 0.5, "no sperm tracks", ha="center", va="center", fontsize=8,
                    transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        hi = 100.0 if panel == "lin" else max(max(flat) * 1.05, 1e-6)
        bins = np.linspace(0.0, hi, 21)
        present = [i for i, s in enumerate(stacks) if s]
        ax.hist([stacks[i] for i in present], bins=bins, stacked=True,
                color=[colours[i] for i in present], edgecolor="white", linewidth=0.3)
        ax.set_xlim(0, hi)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("tracks", fontsize=8)
    used = [i for i in range(len(keys)) if values["vcl"][i]]
    handles = [Line2D([], [], color=colours[i], lw=6,
                      label=GRADE_LABELS.get(keys[i], UNGRADED_LABEL)) for i in used]
    if handles:
        fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.08),
                   ncol=len(handles), fontsize=7, frameon=False)
    fig.subplots_adjust(wspace=0.3)
    return _png(fig)


def counts_png(videos: list[VideoAnalysis]) -> bytes:
    """Sperm per frame over time, one line per video: track-confirmed (solid) and every sperm
    detection (faint)."""
    fig = _new_figure(WIDTH_IN, 2.4)
    ax = fig.add_subplot(1, 1, 1)
    colours = [f"C{i % 10}" for i in range(len(videos))]
    drawn = False
    for v, c in zip(videos, colours, strict=True):
        n = len(v.sperm_per_frame)
        if n == 0:
            continue
        t = np.arange(n) / v.fps
        name = Path(v.source).name or "video"
        ax.plot(t, v.raw_sperm_per_frame[:n], color=c, lw=0.8, alpha=0.3)
        ax.plot(t, v.sperm_per_frame, color=c, lw=1.3, label=name)
        drawn = True
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("sperm per frame", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3, lw=0.5)
    if drawn:
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color="grey", lw=0.8, alpha=0.4))
        labels.append("all detections (faint)")
        ax.legend(handles, labels, fontsize=7, loc="lower right", framealpha=0.8)
    else:
        ax.text(0.5, 0.5, "no frames", ha="center", va="center", transform=ax.transAxes)
    return _png(fig)
