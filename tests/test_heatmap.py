"""Heatmaps of final accuracy over ψ × heterogeneity: the cells, and the PNG files drawn from them."""

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.image import imread

from fedrobust.experiments.heatmap import WORST_PANEL, heatmap_panels, plot_heatmaps
from fedrobust.experiments.report import write_report
from fedrobust.experiments.selection import choose_tuned


def rec(attack, psi, acc, partitioner="iid", alpha=0.5, strategy="gmd", seed=0, val=None):
    rounds = [{"round": 1, "accuracy": acc, "loss": 1.0, "bytes_up": 1, "round_seconds": 0.1}]
    if val is not None:
        rounds[0]["val_accuracy"] = val
    return {"cell": f"{strategy}{attack}{psi}{partitioner}{alpha}{seed}",
            "config": {"strategy": strategy, "attack": attack, "byzantine-fraction": psi, "seed": seed,
                       "partitioner": partitioner, "dirichlet-alpha": alpha},
            "num_classes": 10, "results": {"config": {}, "initial": {}, "rounds": rounds}}


RECORDS = [
    rec("none", 0.0, 0.9), rec("alie", 0.2, 0.5), rec("ipm", 0.2, 0.7),
    rec("none", 0.0, 0.8, "dirichlet", 0.3), rec("alie", 0.2, 0.3, "dirichlet", 0.3),
    rec("ipm", 0.2, 0.1, "dirichlet", 0.3),
    rec("none", 0.0, 0.85, "dirichlet", 1.0),  # only clean: its attacked cells are "not run"
]


def test_panels_hold_each_attack_and_the_worst_case_with_rows_from_iid_to_the_smallest_alpha():
    hets, psis, values, notes = heatmap_panels(choose_tuned(RECORDS, {}), (), "gmd")
    assert hets == ["iid", "dirichlet α=1", "dirichlet α=0.3"] and psis == [0.0, 0.2]
    assert list(values) == ["alie", "ipm", WORST_PANEL]
    np.testing.assert_allclose(values["alie"], [[90, 50], [85, np.nan], [80, 30]])
    np.testing.assert_allclose(values["ipm"], [[90, 70], [85, np.nan], [80, 10]])
    np.testing.assert_allclose(values[WORST_PANEL], [[90, 50], [85, np.nan], [80, 10]])
    assert notes[WORST_PANEL] == [["", "alie"], ["", ""], ["", "ipm"]]


def _has_colour(image, rgb, tol=0.01):
    """Whether the panels (left of the colour bar, which shows the whole scale) hold colour ``rgb``."""
    panels = image[:, : int(0.85 * image.shape[1]), :3]
    return bool((np.abs(panels - np.asarray(rgb)[None, None, :]).max(axis=-1) < tol).any())


def test_the_png_paints_each_cell_on_the_fixed_0_to_100_scale_at_200_dpi(tmp_path):
    hets, psis, values, notes = heatmap_panels(choose_tuned(RECORDS, {}), (), "gmd")
    path = plot_heatmaps(hets, psis, values, notes, "gmd", tmp_path / "h.png")
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] >= 600 and image.shape[1] >= 1200  # 200 dpi, 3 panels
    viridis = colormaps["viridis"]
    for value in (90, 50, 70, 85, 80, 30, 10):  # every cell's colour is there, 0..100 -> viridis
        assert _has_colour(image, viridis(value / 100)[:3]), value
    # No cell at 0 or 100: the scale is fixed, not stretched to the data's range (10..90).
    assert not _has_colour(image, viridis(0.0)[:3]) and not _has_colour(image, viridis(1.0)[:3])


def test_the_report_draws_one_heatmap_per_strategy_from_the_tuned_choices(tmp_path):
    # lr 0.1 has the better validation worst case, lr 0.3 the better test accuracy: the heatmap
    # shows lr 0.1's test accuracy, chosen on validation only.
    records = []
    for lr, val, test in ((0.1, 0.8, 0.4), (0.3, 0.6, 0.9)):
        for r in (rec("none", 0.0, test, val=val), rec("alie", 0.2, test - 0.1, val=val - 0.1),
                  rec("none", 0.0, test, "dirichlet", 0.3, val=val), rec("alie", 0.2, test - 0.2, "dirichlet", 0.3,
                                                                         val=val - 0.2)):
            r["config"]["lr"] = lr
            r["cell"] += str(lr)
            records.append(r)
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    import json

    (sweep / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    written = write_report(sweep, tmp_path / "report", tuned={"lr": [0.1, 0.3]}, plots=False)
    assert [p.name for p in written] == ["report.md", "heatmap_gmd.png"]
    text = written[0].read_text()
    assert "![heatmap_gmd](heatmap_gmd.png)" in text and "## Plots" not in text
    image = imread(written[1])
    viridis = colormaps["viridis"]
    for value in (40, 30, 20):  # lr 0.1's test accuracies: clean, iid alie, dirichlet alie
        assert _has_colour(image, viridis(value / 100)[:3]), value
    for value in (90, 80, 70):  # lr 0.3's, never chosen
        assert not _has_colour(image, viridis(value / 100)[:3]), value


def test_a_strategy_with_a_single_cell_gets_no_heatmap(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    import json

    (sweep / "results.jsonl").write_text(json.dumps(rec("alie", 0.2, 0.5)) + "\n")
    written = write_report(sweep, tmp_path / "report", plots=False)
    assert [p.name for p in written] == ["report.md"]


@pytest.mark.parametrize("missing", ["heterogeneity", "psi"])
def test_panels_need_no_full_grid(missing):
    records = [rec("none", 0.0, 0.9), rec("alie", 0.2, 0.5)] if missing == "heterogeneity" else [
        rec("alie", 0.2, 0.5), rec("alie", 0.2, 0.4, "dirichlet", 0.3)]
    hets, psis, values, _ = heatmap_panels(choose_tuned(records, {}), (), "gmd")
    assert values[WORST_PANEL].shape == (len(hets), len(psis))
