"""A Gantt chart of a schedule: one row per machine, one bar per operation.

Operations are coloured by job and labelled with the job's index where the bar
is wide enough; repairs are shaded red and hatched, maintenance blue::

    draw_gantt(instance, schedule, "ft06.png", title="ft06, mwkr")
"""

from __future__ import annotations

import os
from pathlib import Path

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.instance import JobShopInstance
from fleetmind.envs.scenarios.jobshop.schedule import Schedule

DOWNTIME_STYLE = {
    "repair": ("#f4b6b6", "#b22222", "xx"),
    "maintenance": ("#b6cff4", "#1f4e9c", "//"),
}
"""Face colour, edge colour and hatch of each kind of downtime."""


def check_writable(path: str | Path) -> Path:
    """``path`` as a Path; ConfigError (one line) when a chart cannot be written there."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"--gantt {path}: is a folder; give a file name such as chart.png")
    if not folder.is_dir():
        raise ConfigError(f"--gantt {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--gantt {path}: not writable (permission denied)")
    if path.suffix.lower() not in {".png", ".svg", ".pdf"}:
        raise ConfigError(f"--gantt {path}: give a .png, .svg or .pdf file name")
    return path


def draw_gantt(
    instance: JobShopInstance, schedule: Schedule, path: str | Path, title: str = ""
) -> Path:
    """Draw ``schedule`` to ``path`` (.png, .svg or .pdf); ConfigError when it cannot be written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    path = check_writable(path)
    m, makespan = instance.num_machines, max(schedule.makespan, 1)
    colours = plt.get_cmap("tab20" if instance.num_jobs > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(8, 0.35 * m + 1.2), dpi=90)
    for down in schedule.downtime:
        face, edge, hatch = DOWNTIME_STYLE.get(down.kind, DOWNTIME_STYLE["repair"])
        ax.broken_barh(
            [(down.start, down.end - down.start)], (down.machine - 0.45, 0.9),
            facecolors=face, edgecolor=edge, hatch=hatch,
        )  # fmt: skip
    for op in schedule.operations:
        colour = colours(op.job % colours.N)
        ax.broken_barh(
            [(op.start, op.end - op.start)], (op.machine - 0.4, 0.8),
            facecolors=colour, edgecolor="black", linewidth=0.4,
        )  # fmt: skip
        if op.end - op.start >= makespan / 60:
            ax.text((op.start + op.end) / 2, op.machine, str(op.job), ha="center",
                    va="center", fontsize=6)  # fmt: skip
    ax.set_yticks(range(m), [f"M{k}" for k in range(m)])
    ax.set_ylim(m - 0.5, -0.5)
    ax.set_xlim(0, makespan * 1.01)
    ax.set_xlabel("time")
    ax.set_title(title or f"{instance.name}: makespan {schedule.makespan}", fontsize=9)
    kinds = sorted({d.kind for d in schedule.downtime})
    if kinds:
        styles = [DOWNTIME_STYLE.get(k, DOWNTIME_STYLE["repair"]) for k in kinds]
        handles = [
            Patch(facecolor=f, edgecolor=e, hatch=h, label=k)
            for k, (f, e, h) in zip(kinds, styles, strict=True)
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise ConfigError(f"--gantt {path}: cannot write ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
    return path
