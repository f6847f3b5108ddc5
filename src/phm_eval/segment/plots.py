"""Figures of segmentation results, drawn only from disclosure-controlled tables.

Both functions take a :class:`~phm_eval.disclosure.DisclosedTable` (the output of
``apply_disclosure`` or of a result's ``disclose()``) or a plain DataFrame that already passes
:func:`~phm_eval.disclosure.check_table`; a DataFrame that breaks the policy is refused, so a
figure can never show a count the tables would hide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.ticker import FuncFormatter

from phm_eval.disclosure import DisclosedTable, DisclosurePolicy, check_table
from phm_eval.errors import InputError
from phm_eval.labels import label
from phm_eval.plotting import OKABE_ITO, ROLE_COLOURS, set_titles
from phm_eval.segment._summary import TOTAL
from phm_eval.segment.funnel import funnel_data, limits_curve
from phm_eval.segment.grid import AGE_GROUPS, NEED_GROUPS, NEED_LABELS, age_group_labels


def _disclosed_frame(
    table: DisclosedTable | pd.DataFrame,
    count_cols: Sequence[str],
    policy: DisclosurePolicy | None,
) -> pd.DataFrame:
    if isinstance(table, DisclosedTable):
        return table.table.copy()
    if not isinstance(table, pd.DataFrame):
        raise TypeError("expected a DisclosedTable or a DataFrame")
    present = [c for c in count_cols if c in table.columns]
    violations = check_table(table, policy=policy, count_cols=present)
    if violations:
        first = violations[0]
        raise InputError(
            "figure input",
            f"table is not disclosure-controlled ({len(violations)} violation(s), e.g. {first}); "
            "pass it through apply_disclosure first",
        )
    return table.copy()


def column_label(name: str) -> str:
    """A column name as an axis title in words (``n_patients`` -> "Patients")."""
    return {"n_patients": "Patients", "n_activities": "Activities",
            "list_size": "Registered patients", "rate_per_1000": "Rate per 1,000 patients",
            "percent_of_population": "Per cent of the population"}.get(name, label("covariate", name))


def activity_label(activity: str) -> str:
    """A Network Contract DES activity in words (``pcsp`` -> "Personalised care and support
    plans"), for funnel plot titles."""
    return label("des_activity", activity)


def _fmt_count(value: object) -> str:
    return "*" if pd.isna(value) else f"{int(value):,}"


def _text_colour(rgb: tuple[float, float, float]) -> str:
    luminance = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    return "black" if luminance > 0.5 else "white"


def plot_grid(
    table: DisclosedTable | pd.DataFrame,
    *,
    ax: Axes | None = None,
    value: str = "rate_per_1000",
    policy: DisclosurePolicy | None = None,
    children_max_age: int = 17,
    older_min_age: int = 65,
    title: str = "Emergency admissions by population segment",
    subtitle: str | None = "Emergency admissions per 1,000 patients in the 12 months after the "
    "index date",
    source: str | None = None,
) -> Axes:
    """Heat map of the 3x3 grid, each cell annotated with its patients and rate.

    Parameters
    ----------
    table : DisclosedTable or DataFrame
        The disclosed grid table (``GridResult.disclose()``): ``age_group``, ``need_group``,
        ``n_patients`` and ``value``. Suppressed cells (missing values) are grey and marked
        ``*``.
    ax : Axes, optional
    value : str
        Column that colours the cells (default ``rate_per_1000``).
    policy : DisclosurePolicy, optional
        Used to check a plain DataFrame.
    children_max_age, older_min_age : int
        For the row labels.
    title, subtitle, source : str

    Returns
    -------
    Axes
    """
    df = _disclosed_frame(table, ["n_patients", "emergency_admissions", "deaths"], policy)
    for col in ("age_group", "need_group", "n_patients", value):
        if col not in df.columns:
            raise InputError("grid table", f"column '{col}' is missing", column=col)
    cells = df[df["age_group"] != TOTAL]
    idx = cells.set_index(["age_group", "need_group"])
    rate = np.full((3, 3), np.nan)
    counts = np.full((3, 3), np.nan)
    for i, age in enumerate(AGE_GROUPS):
        for j, need in enumerate(NEED_GROUPS):
            if (age, need) in idx.index:
                rate[i, j] = pd.to_numeric(idx.loc[(age, need), value], errors="coerce")
                counts[i, j] = pd.to_numeric(idx.loc[(age, need), "n_patients"], errors="coerce")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.8))
    cmap = plt.get_cmap("cividis").with_extremes(bad="#DDDDDD")
    finite = rate[np.isfinite(rate)]
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    image = ax.imshow(np.ma.masked_invalid(rate), cmap=cmap, vmin=0, vmax=vmax, aspect="auto")
    for i in range(3):
        for j in range(3):
            shown = f"n = {_fmt_count(counts[i, j])}\n"
            shown += "rate *" if np.isnan(rate[i, j]) else f"{rate[i, j]:,.1f} per 1,000"
            rgb = to_rgb("#DDDDDD") if np.isnan(rate[i, j]) else cmap(rate[i, j] / vmax)[:3]
            ax.text(j, i, shown, ha="center", va="center", fontsize=9, color=_text_colour(rgb))
    row_labels = age_group_labels(children_max_age=children_max_age,
                                  older_min_age=older_min_age)
    ax.set_xticks(range(3), [NEED_LABELS[n].replace(" ", "\n", 1) if len(NEED_LABELS[n]) > 14
                             else NEED_LABELS[n] for n in NEED_GROUPS])
    ax.set_yticks(range(3), [row_labels[a] for a in AGE_GROUPS])
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    colorbar = ax.figure.colorbar(image, ax=ax, shrink=0.85)
    colorbar.set_label("Emergency admissions per 1,000 patients" if value.startswith("rate")
                       else column_label(value))
    note = source or "Counts rounded and small numbers suppressed (*) before plotting."
    set_titles(ax, title, subtitle=subtitle, source=note)
    return ax


def funnel_plot(
    table: DisclosedTable | pd.DataFrame,
    *,
    count_col: str = "n_activities",
    denominator_col: str = "list_size",
    label_col: str | None = None,
    target: float | None = None,
    levels: Sequence[float] = (0.95, 0.998),
    method: str = "exact",
    per: float = 1000.0,
    label_outside: float | None = 0.998,
    target_range: tuple[float | None, float | None] | None = None,
    ax: Axes | None = None,
    policy: DisclosurePolicy | None = None,
    title: str = "Practice rates compared with the overall rate",
    subtitle: str | None = None,
    xlabel: str = "Registered patients",
    ylabel: str = "Rate per 1,000 registered patients",
    source: str | None = None,
    colours: Mapping[str, str] | None = None,
) -> Axes:
    """Funnel plot of unit rates against size, with control limits around the target.

    Parameters
    ----------
    table : DisclosedTable or DataFrame
        One row per unit (e.g. ``DesMetrics.funnel_table(...)`` after disclosure). Rows whose
        count or denominator is suppressed are left out (and the number left out is noted).
    count_col, denominator_col : str
    label_col : str, optional
        Column naming the units; default the table's index.
    target : float, optional
        Target rate in events per unit of denominator; default the pooled rate of the rows
        shown (e.g. the PCN or overall rate).
    levels, method, per
        As :func:`~phm_eval.segment.funnel_limits` (95% and 99.8% limits; interpolated exact
        Poisson by default).
    label_outside : float or None
        Label units outside the limits of this level (default 99.8%); ``None`` labels none.
    target_range : (low, high), optional
        A published target range per ``per`` to shade (e.g. a DES range for the year).
    ax : Axes, optional
    policy : DisclosurePolicy, optional
        Used to check a plain DataFrame.

    Returns
    -------
    Axes
    """
    df = _disclosed_frame(table, [count_col, "n_patients"], policy)
    if label_col is None:
        df = df.rename_axis("unit").reset_index()
        label_col = "unit"
    data = funnel_data(df, count_col, denominator_col, target=target, levels=levels,
                       method=method, per=per)
    theta = data.attrs["target"]
    colours = dict(colours or {})
    if ax is None:
        _, ax = plt.subplots()
    curve = limits_curve(data[denominator_col].min(), data[denominator_col].max(), theta,
                         levels=levels, method=method, per=per)
    styles = ["--", ":"]
    for k, level in enumerate(levels):
        name = f"{level * 100:g}"
        ax.plot(curve["denominator"], curve[f"upper_{name}"], styles[k % 2],
                color=ROLE_COLOURS["reference"], lw=1.2, label=f"{name}% limits")
        ax.plot(curve["denominator"], curve[f"lower_{name}"], styles[k % 2],
                color=ROLE_COLOURS["reference"], lw=1.2)
    ax.axhline(theta * per, color=ROLE_COLOURS["observed"], lw=1.2,
               label=f"Overall rate {theta * per:,.1f}")
    if target_range is not None:
        low, high = target_range
        top = high if high is not None else ax.get_ylim()[1]
        if low is not None:
            ax.axhspan(low, top, color=OKABE_ITO["bluish_green"], alpha=0.12,
                       label="Target range")
    outer = f"{max(levels) * 100:g}"
    inner = f"{min(levels) * 100:g}"
    status = np.where(data[f"outside_{outer}"] != "", "outer",
                      np.where(data[f"outside_{inner}"] != "", "inner", "in"))
    palette = {"in": colours.get("in", OKABE_ITO["blue"]),
               "inner": colours.get("inner", OKABE_ITO["orange"]),
               "outer": colours.get("outer", OKABE_ITO["vermillion"])}
    names = {"in": "Within limits", "inner": f"Outside {inner}% limits",
             "outer": f"Outside {outer}% limits"}
    for key in ("in", "inner", "outer"):
        sel = data[status == key]
        if len(sel):
            ax.scatter(sel[denominator_col], sel["rate"], s=28, color=palette[key],
                       edgecolor="white", linewidth=0.5, zorder=3, label=names[key])
    if label_outside is not None:
        name = f"{label_outside * 100:g}"
        flagged = data[data.get(f"outside_{name}", pd.Series("", index=data.index)) != ""]
        for _, row in flagged.iterrows():
            ax.annotate(str(row[label_col]), (row[denominator_col], row["rate"]),
                        xytext=(4, 4), textcoords="offset points", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.legend(loc="best")
    dropped = data.attrs["n_dropped"]
    note = source or "Counts disclosure-controlled before plotting."
    if dropped:
        note += f" {dropped} unit(s) with suppressed values not shown."
    method_note = ("exact Poisson limits (Spiegelhalter 2005)" if method == "exact"
                   else "normal-approximation limits")
    set_titles(ax, title, subtitle=subtitle or f"Control limits: {method_note}", source=note)
    return ax
