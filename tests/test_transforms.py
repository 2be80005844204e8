"""Tests for trustvis.data.transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trustvis.data import transforms as T


def _img(h: int = 48, w: int = 40, seed: int = 0, noise: float = 20.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
    return np.clip(base + rng.normal(0, noise, (h, w, 3)), 0, 255).astype(np.uint8)


def test_jpeg():
    img = _img()
    out = T.jpeg(img, 50)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.array_equal(out, img)
    hi = T.jpeg(img, 100)
    assert np.abs(hi.astype(int) - img).mean() < np.abs(out.astype(int) - img).mean()
    smooth = _img(seed=1, noise=2.0)
    assert np.abs(T.jpeg(smooth, 100).astype(int) - smooth).mean() < 2
    with pytest.raises(ValueError):
        T.jpeg(img, 0)


def test_blur():
    img = _img()
    np.testing.assert_array_equal(T.gaussian_blur(img, 0), img)
    b = T.gaussian_blur(img, 2.0)
    assert b.shape == img.shape and b.dtype == np.uint8
    assert b.astype(float).std() < img.astype(float).std()
    with pytest.raises(ValueError):
        T.gaussian_blur(img, -1)


def test_resize_and_degradations():
    img = _img(48, 40)
    assert T.resize(img, 0.5).shape == (24, 20, 3)
    assert T.resize(img, 1.5).shape == (72, 60, 3)
    assert set(T.DEGRADATIONS) == {"jpeg95", "jpeg75", "jpeg50", "blur1", "blur2", "resize0.5"}
    for name in T.DEGRADATIONS:
        out = T.degrade(img, name)
        assert out.shape == img.shape and out.dtype == np.uint8, name
    with pytest.raises(KeyError, match="jpeg95"):
        T.degrade(img, "jpeg10")


def test_blurjpeg_reproducible_and_identity():
    img = _img()
    aug = T.BlurJpeg(0.5, 0.5)
    torch.manual_seed(3)
    a = [aug(img) for _ in range(6)]
    torch.manual_seed(3)
    b = [aug(img) for _ in range(6)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, img) for x in a)
    ident = T.BlurJpeg(0.0, 0.0)
    for _ in range(5):
        np.testing.assert_array_equal(ident(img), img)
    always = T.BlurJpeg(1.0, 1.0, sigma_min=1.0, sigma_max=2.0)
    assert not np.array_equal(always(img), img)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"p_blur": -0.1},
        {"p_jpeg": 1.5},
        {"sigma_min": 2, "sigma_max": 1},
        {"q_min": 0},
        {"q_min": 90, "q_max": 80},
    ],
)
def test_blurjpeg_invalid(kwargs):
    with pytest.raises(ValueError):
        T.BlurJpeg(**kwargs)


def test_crops_and_flip():
    img = _img(48, 40)
    torch.manual_seed(0)
    assert T.random_crop(img, 32).shape == (32, 32, 3)
    assert T.random_crop(img, (16, 24)).shape == (16, 24, 3)
    c = T.center_crop(img, 20)
    np.testing.assert_array_equal(c, img[14:34, 10:30])
    assert T.center_crop(img, 64).shape == (64, 64, 3)  # smaller image is enlarged, not padded
    assert T.random_crop(img, 64).shape == (64, 64, 3)
    np.testing.assert_array_equal(T.random_hflip(img, p=1.0), img[:, ::-1])
    np.testing.assert_array_equal(T.random_hflip(img, p=0.0), img)
    with pytest.raises(ValueError):
        T.random_hflip(img, p=2)


def test_tensor_roundtrip():
    img = _img()
    t = T.to_tensor(img)
    assert t.dtype == torch.float32 and t.shape == (3, 48, 40)
    assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0
    np.testing.assert_array_equal(T.to_uint8(t), img)
    with pytest.raises(TypeError):
        T.to_tensor(img.astype(np.float32))


def test_compose():
    img = _img()
    f = T.compose(lambda x: T.center_crop(x, 32), T.to_tensor)
    assert f(img).shape == (3, 32, 32)


def _highpass_energy(img: np.ndarray) -> float:
    g = img.astype(np.float64).mean(-1)
    return float((np.diff(g, axis=0) ** 2).mean() + (np.diff(g, axis=1) ** 2).mean())


def test_webp_and_unsharp():
    img = _img(64, 64)
    out = T.webp(img, 50)
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    assert np.abs(T.webp(img, 95).astype(int) - img).mean() < np.abs(out.astype(int) - img).mean()
    with pytest.raises(ValueError, match="WebP quality"):
        T.webp(img, 101)
    smooth = _img(64, 64, noise=4.0)
    sharp = T.unsharp(smooth, 1.0, 0.8)
    assert _highpass_energy(sharp) > 1.3 * _highpass_energy(smooth)  # sharpening raises the high frequencies
    assert np.array_equal(T.unsharp(smooth, 1.0, 0.0), smooth)
    with pytest.raises(ValueError, match="radius"):
        T.unsharp(smooth, 0.0, 0.5)


def test_launder_is_seeded_per_image_and_keeps_the_shape():
    img, launder = _img(64, 64), T.Launder()
    a, steps_a = launder(img, np.random.default_rng(7))
    b, steps_b = launder(img, np.random.default_rng(7))
    assert np.array_equal(a, b) and steps_a == steps_b and a.shape == img.shape and a.dtype == np.uint8
    runs = [launder(img, np.random.default_rng(s))[1] for s in range(200)]
    assert len({repr(r) for r in runs}) > 150  # treatments differ from image to image
    assert 0.7 < np.mean(["resize" in r for r in runs]) < 0.9  # p_resize 0.8
    assert 0.2 < np.mean(["sharpen" in r for r in runs]) < 0.4  # p_sharpen 0.3
    assert 0.4 < np.mean(["jpeg" in r for r in runs]) < 0.6 and all(
        ("jpeg" in r) != ("webp" in r) for r in runs
    )
    qualities = [r.get("jpeg", r.get("webp")) for r in runs]
    assert min(qualities) >= 60 and max(qualities) <= 95 and len(set(qualities)) > 20
    scales = [r["resize"]["scale"] for r in runs if "resize" in r]
    assert 0.5 <= min(scales) and max(scales) <= 0.9


def test_launder_steps_are_what_it_applies():
    img = _img(64, 64)
    only_jpeg = T.Launder(p_resize=0.0, p_sharpen=0.0, jpeg_share=1.0, q_min=90, q_max=90)
    out, steps = only_jpeg(img, np.random.default_rng(0))
    assert steps == {"jpeg": 90} and np.array_equal(out, T.jpeg(img, 90))
    out, steps = T.Launder(p_resize=0.0, p_sharpen=0.0, jpeg_share=0.0, q_min=70, q_max=70)(
        img, np.random.default_rng(0)
    )
    assert steps == {"webp": 70} and np.array_equal(out, T.webp(img, 70))
    resized, steps = T.Launder(
        p_resize=1.0, scale_min=0.5, scale_max=0.5, p_sharpen=0.0, q_min=100, q_max=100
    )(img, np.random.default_rng(0))
    assert steps["resize"]["scale"] == 0.5
    assert _highpass_energy(resized) < 0.5 * _highpass_energy(
        img
    )  # the resize chain removes the finest detail


@pytest.mark.parametrize(
    "kwargs, field",
    [({"p_resize": 1.5}, "p_resize"), ({"scale_min": 0.0}, "scale_min"), ({"scale_max": 1.2}, "scale_max"),
     ({"sharpen_min": 0.9}, "sharpen_min"), ({"q_min": 0}, "q_min"), ({"jpeg_share": -0.1}, "jpeg_share")],
)  # fmt: skip
def test_launder_invalid(kwargs, field):
    with pytest.raises(ValueError, match=field):
        T.Launder(**kwargs)
