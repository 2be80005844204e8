"""Anomaly metrics (image/pixel AUROC, PRO/AUPRO, F1-max, adaptive threshold) and their figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from sklearn.metrics import average_precision_score, roc_auc_score

from trustvis.metrics.anomaly import (
    adaptive_threshold,
    anomaly_metrics,
    aupro,
    f1_max,
    image_auroc,
    pixel_auroc,
    pro_curve,
    threshold_metrics,
)
from trustvis.report.plots import heatmap_overlay, plot_anomaly_curves, plot_anomaly_grid, save_overlay

PNG = b"\x89PNG\r\n\x1a\n"

# f1_max by hand: labels [0, 0, 1, 1, 0, 1], scores [0.1, 0.4, 0.35, 0.8, 0.7, 0.9]; 3 anomalous.
# Sorted by score (desc): 0.9(1) 0.8(1) 0.7(0) 0.4(0) 0.35(1) 0.1(0); F1 = 2 TP / (TP + FP + 3):
#   t=0.9: 2/4 = 0.5    t=0.8: 4/5 = 0.8    t=0.7: 4/6    t=0.4: 4/7    t=0.35: 6/8 = 0.75   t=0.1: 6/9
# -> F1-max 0.8 at threshold 0.8.
Y6 = np.array([0, 0, 1, 1, 0, 1])
S6 = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.9])


def _two_regions() -> tuple[np.ndarray, np.ndarray]:
    """One 5x5 image: region A (2x2, 4 px) top-left, region B (1 px) bottom-right, 20 normal pixels.

    Map: A = [[0.9, 0.9], [0.2, 0.2]], B = 0.8, one normal pixel at 0.6, the other 19 at 0.1.
    """
    mask = np.zeros((1, 5, 5), dtype=np.uint8)
    amap = np.full((1, 5, 5), 0.1)
    mask[0, 0:2, 0:2] = 1
    amap[0, 0, 0:2] = 0.9
    amap[0, 1, 0:2] = 0.2
    mask[0, 4, 4] = 1
    amap[0, 4, 4] = 0.8
    amap[0, 2, 4] = 0.6  # a false positive
    return mask, amap


# --- image level --------------------------------------------------------------------------------------


def test_image_auroc_perfect_reversed_and_torch() -> None:
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.9])
    assert image_auroc(y, s) == 1.0
    assert image_auroc(y, -s) == 0.0
    assert image_auroc(torch.tensor(y), torch.tensor(s, requires_grad=True)) == 1.0
    assert image_auroc(y.astype(bool), np.ones(5)) == 0.5  # all tied


def test_image_errors() -> None:
    with pytest.raises(ValueError, match="both classes"):
        image_auroc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="both classes"):
        image_auroc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="differ in length"):
        image_auroc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0 \\(normal\\) or 1"):
        image_auroc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN or infinite"):
        image_auroc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="Empty"):
        image_auroc([], [])


def test_f1_max_by_hand() -> None:
    f1, thr = f1_max(Y6, S6)
    assert f1 == pytest.approx(0.8)
    assert thr == pytest.approx(0.8)
    # ties: all scores equal -> one operating point, everything predicted anomalous: F1 = 2*3/(6+3)
    f1, thr = f1_max(Y6, np.full(6, 0.5))
    assert f1 == pytest.approx(2 / 3)
    assert thr == 0.5
    with pytest.raises(ValueError, match="no anomalous"):
        f1_max([0, 0], [0.1, 0.2])


def test_threshold_metrics_by_hand() -> None:
    # threshold 0.5: predicted anomalous = scores 0.8, 0.7, 0.9 -> TP 2 (0.8, 0.9), FP 1 (0.7), FN 1 (0.35)
    m = threshold_metrics(Y6, S6, 0.5)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    none = threshold_metrics(Y6, S6, 10.0)  # nothing flagged: precision 0 by convention
    assert none["precision"] == 0.0 and none["recall"] == 0.0 and none["accuracy"] == pytest.approx(0.5)


def test_adaptive_threshold_modes() -> None:
    normal = np.arange(101) / 100.0
    # normal-only: the 0.99 quantile (linear interpolation) of 0.00..1.00 is 0.99
    assert adaptive_threshold(normal) == pytest.approx(0.99)
    assert adaptive_threshold(normal, labels=np.zeros(101)) == pytest.approx(0.99)
    assert adaptive_threshold(normal, normal_quantile=0.5) == pytest.approx(0.5)
    # both classes: the F1-optimal threshold (0.8, see f1_max by hand)
    assert adaptive_threshold(S6, labels=Y6) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="no normal"):
        adaptive_threshold([0.5, 0.7], labels=[1, 1])
    with pytest.raises(ValueError, match="normal_quantile"):
        adaptive_threshold(normal, normal_quantile=0.0)


# --- pixel level ----------------------------------------------------------------------------------------


def test_pixel_auroc_pools_all_images() -> None:
    # Each image alone is perfectly ranked (AUROC 1), but pooled: positives {0.9, 0.3} vs negatives
    # {0.8, 0.2}: pairs 0.9>0.8, 0.9>0.2, 0.3<0.8, 0.3>0.2 -> 3/4.
    masks = np.array([[[1, 0]], [[1, 0]]])
    maps = np.array([[[0.9, 0.8]], [[0.3, 0.2]]])
    assert pixel_auroc(masks, maps) == pytest.approx(0.75)
    assert pixel_auroc(masks[0], maps[0]) == pytest.approx(1.0)  # (H, W) = one image
    assert pixel_auroc(masks[:, None], maps[:, None]) == pytest.approx(0.75)  # (N, 1, H, W)


def test_pixel_auroc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((3, 12, 12)) < 0.2
    maps = np.round(rng.random((3, 12, 12)) + masks, 1)  # many ties
    assert pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-12)


def test_pixel_errors() -> None:
    m, a = _two_regions()
    with pytest.raises(ValueError, match="no anomalous pixel"):
        pixel_auroc(np.zeros_like(m), a)
    with pytest.raises(ValueError, match="no normal pixel"):
        aupro(np.ones_like(m), a)
    with pytest.raises(ValueError, match="differ in shape"):
        aupro(m, a[:, :4])
    with pytest.raises(ValueError, match="divide by 255"):
        pixel_auroc(m * 255, a)
    with pytest.raises(ValueError, match="shape \\(N, H, W\\)"):
        pixel_auroc(m[None, None], a[None, None])
    with pytest.raises(ValueError, match="fpr_limit"):
        aupro(m, a, fpr_limit=0.0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        aupro(m, np.where(m > 0, np.inf, a))


def test_aupro_perfect_and_constant_maps() -> None:
    m, _ = _two_regions()
    assert aupro(m, m.astype(float)) == pytest.approx(1.0)
    # Constant map: one tie group, so the curve is the straight line (0, 0) -> (1, 1): PRO = FPR.
    # integral_0^0.3 x dx = 0.045, / 0.3 = 0.15 = fpr_limit / 2.
    assert aupro(m, np.zeros(m.shape)) == pytest.approx(0.15)
    assert aupro(m, np.zeros(m.shape), fpr_limit=1.0) == pytest.approx(0.5)
    assert aupro(m, -m.astype(float)) == pytest.approx(0.0)  # inverted map: no overlap before FPR 1


def test_pro_is_mean_over_regions_not_pixel_weighted() -> None:
    m, a = _two_regions()
    fpr, pro, thr = pro_curve(m, a)
    # At t = 0.5: region A has 2 of 4 pixels >= t (0.5), region B 1 of 1 (1.0) -> PRO = (0.5 + 1) / 2 = 0.75
    # (pixel-weighted would be 3/5 = 0.6); FPR = 1 normal pixel (0.6) of 20 = 0.05.
    k = int(np.flatnonzero(thr >= 0.5)[-1])
    assert pro[k] == pytest.approx(0.75)
    assert fpr[k] == pytest.approx(0.05)
    # Whole curve (thresholds inf, 0.9, 0.8, 0.6, 0.2, 0.1):
    np.testing.assert_allclose(thr, [np.inf, 0.9, 0.8, 0.6, 0.2, 0.1])
    np.testing.assert_allclose(fpr, [0, 0, 0, 0.05, 0.05, 1.0])
    np.testing.assert_allclose(pro, [0, 0.25, 0.75, 0.75, 1.0, 1.0])
    # AUPRO(0.3) = [0.05 * 0.75 (FPR 0 -> 0.05) + 0.25 * 1.0 (0.05 -> 0.3)] / 0.3 = 0.2875 / 0.3
    assert aupro(m, a) == pytest.approx(0.2875 / 0.3)
    # Limit 1: 0.0375 + 0.95 * 1.0 = 0.9875
    assert aupro(m, a, fpr_limit=1.0) == pytest.approx(0.9875)


def test_aupro_interpolates_at_the_limit() -> None:
    # 1 defect pixel (0.5) and 4 normal pixels (0.9, 0.1, 0.1, 0.1): curve (0,0) -(t=0.9)-> (0.25, 0)
    # -(t=0.5)-> (0.25, 1) -(t=0.1)-> (1, 1). With limit 0.2 PRO is 0 throughout -> 0.
    # With limit 0.3: area 0.05 * 1 = 0.05 -> 0.05 / 0.3.
    m = np.array([[[1, 0, 0, 0, 0]]])
    a = np.array([[[0.5, 0.9, 0.1, 0.1, 0.1]]])
    assert aupro(m, a, fpr_limit=0.2) == pytest.approx(0.0)
    assert aupro(m, a) == pytest.approx(0.05 / 0.3)
    # A slanted segment crossing the limit: defect 0.1 ties with 3 normal pixels ->
    # (0.25, 0) -> (1, 1); at FPR 0.3 PRO is linearly interpolated: (0.3 - 0.25) / 0.75 = 1/15;
    # area = 0.05 * (0 + 1/15) / 2 -> / 0.3.
    a2 = np.array([[[0.1, 0.9, 0.1, 0.1, 0.1]]])
    assert aupro(m, a2) == pytest.approx(0.05 * (1 / 15) / 2 / 0.3)


def test_connected_components_are_8_connected() -> None:
    # Pixels (0,0), (1,1), (1,2): one region under 8-connectivity (diagonal touch), two under 4.
    m = np.zeros((1, 4, 4), dtype=np.uint8)
    m[0, 0, 0] = m[0, 1, 1] = m[0, 1, 2] = 1
    a = np.zeros((1, 4, 4))
    a[0, 0, 0] = 1.0  # covers only the corner pixel
    fpr, pro, thr = pro_curve(m, a)
    assert thr[1] == 1.0 and fpr[1] == 0.0
    assert pro[1] == pytest.approx(1 / 3)  # 4-connectivity would give mean(1, 0) = 0.5
    # Regions never connect across images: the same pixel in two images is two regions.
    m2 = np.zeros((2, 3, 3), dtype=np.uint8)
    m2[:, 1, 1] = 1
    a2 = np.zeros((2, 3, 3))
    a2[0, 1, 1] = 1.0
    _, pro2, _ = pro_curve(m2, a2)
    assert pro2[1] == pytest.approx(0.5)


def _brute_force_aupro(masks: np.ndarray, maps: np.ndarray, limit: float) -> float:
    """Direct definition: loop over thresholds and over the 8-connected regions of each image."""
    regions = []  # (image index, bool region mask)
    for i, mk in enumerate(masks):
        lab, n = ndimage.label(mk, structure=np.ones((3, 3)))
        regions += [(i, lab == j) for j in range(1, n + 1)]
    normal = masks == 0
    xs, ys = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        pred = maps >= t
        xs.append(float(pred[normal].mean()))
        ys.append(float(np.mean([pred[i][reg].mean() for i, reg in regions])))
    x, y = np.array(xs), np.array(ys)
    k = int(np.searchsorted(x, limit))  # first point at or past the limit
    y_lim = y[k - 1] + (y[k] - y[k - 1]) * (limit - x[k - 1]) / (x[k] - x[k - 1])
    x_c, y_c = np.r_[x[:k], limit], np.r_[y[:k], y_lim]
    return float(np.sum(np.diff(x_c) * (y_c[1:] + y_c[:-1]) / 2)) / limit


def test_aupro_matches_brute_force_and_is_rank_invariant() -> None:
    rng = np.random.default_rng(1)
    masks = np.zeros((3, 10, 10), dtype=np.uint8)
    masks[0, 1:4, 1:3] = 1
    masks[0, 7, 7:9] = 1
    masks[1, 5:9, 2:6] = 1
    maps = np.round(rng.random(masks.shape) + 0.6 * masks, 2)  # ties included
    for limit in (0.05, 0.3, 1.0):
        assert aupro(masks, maps, fpr_limit=limit) == pytest.approx(_brute_force_aupro(masks, maps, limit))
    # an increasing transform of the scores changes nothing
    assert aupro(masks, np.exp(3 * maps)) == pytest.approx(aupro(masks, maps))
    # the quantile-threshold curve is a coarser version of the exact one
    fpr, pro, _ = pro_curve(masks, maps, num_thresholds=20)
    assert len(fpr) <= 21 and fpr[-1] == 1.0 and pro[-1] == pytest.approx(1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(pro) >= 0)
    assert aupro(masks, maps, num_thresholds=50) == pytest.approx(aupro(masks, maps), abs=0.05)


# --- all together -----------------------------------------------------------------------------------------


def test_anomaly_metrics_dict() -> None:
    m, a = _two_regions()
    masks = np.concatenate([np.zeros_like(m), m, np.zeros_like(m), m])  # 4 images: normal, anom, ...
    maps = np.concatenate([np.full(m.shape, 0.05), a, np.full(m.shape, 0.15), a])
    labels = np.array([0, 1, 0, 1])
    scores = maps.reshape(4, -1).max(axis=1)  # 0.05, 0.9, 0.15, 0.9
    out = anomaly_metrics(labels, scores, masks=masks, maps=maps, threshold=0.5)
    assert out["image_auroc"] == 1.0
    assert out["image_ap"] == pytest.approx(average_precision_score(labels, scores))
    assert out["f1_max"] == 1.0 and out["f1_max_threshold"] == pytest.approx(0.9)
    assert out["n_normal"] == 2 and out["n_anomalous"] == 2
    assert out["pixel_auroc"] == pytest.approx(pixel_auroc(masks, maps))
    assert out["aupro"] == pytest.approx(aupro(masks, maps))
    assert out["accuracy"] == 1.0 and out["threshold"] == 0.5
    no_pix = anomaly_metrics(labels, scores)
    assert "pixel_auroc" not in no_pix and "accuracy" not in no_pix
    with pytest.raises(ValueError, match="both masks and maps"):
        anomaly_metrics(labels, scores, masks=masks)
    with pytest.raises(ValueError, match="cover 3 images"):
        anomaly_metrics(labels, scores, masks=masks[:3], maps=maps[:3])
    with pytest.raises(ValueError, match="both classes"):
        anomaly_metrics([0, 0, 0, 0], scores)


# --- figures -------------------------------------------------------------------------------------------


def test_heatmap_overlay_shape_dtype_and_colours() -> None:
    img = np.full((16, 20), 128, dtype=np.uint8)
    amap = np.zeros((4, 5))
    amap[0, 0] = 1.0  # resized bilinearly to 16x20: top-left hot, bottom-right cold
    out = heatmap_overlay(img, amap)
    assert out.shape == (16, 20, 3) and out.dtype == np.uint8
    r, _, b = out[0, 0].astype(int)
    assert r > b  # jet top = red
    r, _, b = out[-1, -1].astype(int)
    assert b > r  # jet bottom = blue
    np.testing.assert_array_equal(heatmap_overlay(img, amap, alpha=0.0), np.repeat(img[..., None], 3, -1))
    chw = torch.rand(3, 8, 8)  # CHW float tensor in [0, 1]
    assert heatmap_overlay(chw, torch.rand(8, 8)).shape == (8, 8, 3)
    with pytest.raises(ValueError, match="alpha"):
        heatmap_overlay(img, amap, alpha=2.0)
    with pytest.raises(ValueError, match="2-D"):
        heatmap_overlay(img, np.zeros((2, 3, 4)))


def test_save_overlay_writes_png(tmp_path) -> None:
    img = np.random.default_rng(0).integers(0, 255, (12, 10, 3), dtype=np.uint8)
    mask = np.zeros((12, 10))
    mask[3:8, 3:7] = 1
    p = save_overlay(img, mask * 2.0, tmp_path / "o.png", mask=mask, vmin=0, vmax=2)
    assert p.read_bytes()[:8] == PNG
    arr = np.asarray(Image.open(p))
    assert arr.shape == (12, 2 * 10 + 4, 3)
    np.testing.assert_array_equal(arr[:, :10], img)  # left panel is the image itself
    assert tuple(arr[3, 10 + 4 + 3]) == (255, 255, 255)  # contour corner on the overlay


def test_plot_anomaly_grid_and_curves(tmp_path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(5):
        mask = np.zeros((16, 16))
        if i % 2:
            mask[4:9, 5:11] = 1
        rows.append(
            {
                "image": rng.random((16, 16, 3)),
                "map": rng.random((8, 8)) * (i + 1),
                "mask": mask if i % 2 else None,
                "score": float(i),
                "label": i % 2,
                "caption": f"img_{i}.png",
            }
        )
    p = plot_anomaly_grid(rows, tmp_path / "grid.png", title="best / worst")
    assert p.read_bytes()[:8] == PNG and p.stat().st_size > 1000
    with pytest.raises(ValueError, match="empty"):
        plot_anomaly_grid([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="needs 'image' and 'map'"):
        plot_anomaly_grid([{"image": rows[0]["image"]}], tmp_path / "x.png")

    y = np.array([0, 0, 1, 1, 0, 1])
    curves = {
        "padim": {"labels": y, "scores": S6},
        "fyd": {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 1.0, 1.0], "auroc": 0.75},
        "pair": ([0.0, 1.0], [0.0, 1.0]),
    }
    p2 = plot_anomaly_curves(curves, tmp_path / "roc.png")
    assert p2.read_bytes()[:8] == PNG and p2.stat().st_size > 1000
    with pytest.raises(ValueError, match="Nothing to plot"):
        plot_anomaly_curves({}, tmp_path / "x.png")
