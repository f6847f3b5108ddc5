"""The shared figure theme and reproducible figure files."""

from __future__ import annotations

import hashlib
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from phm_eval import plotting  # noqa: E402


def _figure():
    with plotting.phm_style():
        fig, ax = plt.subplots()
        ax.step([0, 1, 2, 3], [1.0, 0.9, 0.8, 0.75], where="post", label="Intervention")
        ax.step([0, 1, 2, 3], [1.0, 0.85, 0.7, 0.6], where="post", label="Comparison")
        ax.set_xlabel("Months since enrolment")
        ax.set_ylabel("Free of emergency admission")
        ax.legend()
        plotting.set_titles(ax, "Time to first emergency admission", subtitle="Synthetic PCN",
                            source="Counts rounded to the nearest 5")
    return fig


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_palette_is_okabe_ito():
    assert set(plotting.PALETTE) == {
        "#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"
    }
    with plotting.phm_style():
        cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    assert cycle[:2] == ["#0072B2", "#D55E00"]


def test_style_context_restores_settings():
    before = plt.rcParams["axes.spines.top"]
    with plotting.phm_style():
        assert plt.rcParams["axes.spines.top"] is False
    assert plt.rcParams["axes.spines.top"] == before


def test_save_figure_writes_png_and_svg_reproducibly(tmp_path):
    fig = _figure()
    first = plotting.save_figure(fig, tmp_path / "a" / "km")
    second = plotting.save_figure(fig, tmp_path / "b" / "km")
    plt.close(fig)
    assert [p.name for p in first] == ["km.png", "km.svg"]
    assert all(p.stat().st_size > 1000 for p in first)
    for one, two in zip(first, second, strict=True):
        assert _digest(one) == _digest(two), one.name
    svg = first[1].read_text()
    assert "<dc:date>" not in svg and "Matplotlib v" not in svg
    # Text stays text, so the disclosure checker and screen readers can read it.
    assert "Months since enrolment" in svg
    png = first[0].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"Matplotlib" not in png
    # 7 x 4.5 inches at 150 dpi.
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1050, 675)


def test_svg_is_identical_from_a_fresh_figure(tmp_path):
    a = plotting.save_figure(_figure(), tmp_path / "one", formats=("svg",))[0]
    b = plotting.save_figure(_figure(), tmp_path / "two", formats=("svg",))[0]
    plt.close("all")
    assert a.read_text() == b.read_text()
    ids = re.findall(r'id="(m[0-9a-f]{10})"', a.read_text())
    assert ids  # marker ids exist and are salted, not random


def test_alt_text_is_returned_and_embedded(tmp_path):
    fig = _figure()
    alt = plotting.describe_figure(fig, summary="The curves separate after month 1.")
    assert alt == (
        "Line chart: Time to first emergency admission. X axis: Months since enrolment; "
        "Y axis: Free of emergency admission. Series: Intervention, Comparison. "
        "The curves separate after month 1."
    )
    svg = plotting.save_figure(fig, tmp_path / "f", formats=("svg",), alt_text=alt)[0]
    plt.close(fig)
    assert f"<dc:description>{alt}</dc:description>" in svg.read_text()


def test_unknown_format_is_refused(tmp_path):
    fig = _figure()
    with pytest.raises(ValueError, match="unsupported figure format"):
        plotting.save_figure(fig, tmp_path / "x", formats=("gif",))
    plt.close(fig)
