"""COOL-CHIC / EQLINR: exact decoding, rate estimate vs file size, SGA, entropy model, bad files, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trustvis import registry
from trustvis.methods.codec import bitstream as bs
from trustvis.methods.codec.coolchic import OverfitCodec, _upsampling_matrix, decode, lambda_for_quality
from trustvis.methods.codec.entropy import (
    ARM,
    P_MIN,
    IntegerARM,
    LatentCanvas,
    arm_to_integers,
    bits,
    causal_offsets,
    cdf,
    context_columns,
    gather_context,
    integer_arm,
    integer_arm_np,
    scale_from_log,
)
from trustvis.methods.codec.quantize import quantize, sga, sga_temperature


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo crop with odd, non-square sides (37x51)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:137, 150:201])


@pytest.fixture(scope="module")
def encoded(photo):
    m = registry.build("eqlinr", "tiny", iterations=30)
    return m.encode(photo)


@pytest.mark.parametrize("name", ["coolchic", "eqlinr"])
def test_decoding_reproduces_the_encoders_reconstruction_exactly(name, photo):
    m = registry.build(name, "tiny", iterations=20)
    res = m.encode(photo)
    x = m.decompress(res.data)
    assert x.shape == (3, 37, 51)
    torch.testing.assert_close(x, res.x_hat, rtol=0, atol=0)
    assert torch.equal(torch.round(x * 255), x * 255)  # 8-bit levels
    assert res.stats["bpp"] == pytest.approx(8 * len(res.data) / (37 * 51))


def test_estimated_rate_matches_the_file_size():
    from skimage import data

    img = np.ascontiguousarray(data.coffee()[50:146, 100:228])  # 96x128
    res = registry.build("coolchic", "default", iterations=60, lmbda=1e-3).encode(img)
    payload_bits = 8 * (res.stats["bytes"] - res.stats["header_bytes"])
    estimate = res.stats["estimated_bpp"] * 96 * 128
    assert abs(payload_bits - estimate) / estimate < 0.04
    assert res.stats["header_bytes"] < 80


def test_higher_lambda_gives_smaller_files(photo):
    small = registry.build("coolchic", "default", iterations=200, lmbda=2e-2).encode(photo)
    large = registry.build("coolchic", "default", iterations=200, lmbda=1e-4).encode(photo)
    assert len(small.data) < len(large.data)


def test_sga_tends_to_rounding_as_the_temperature_falls():
    y = torch.tensor([0.2, 0.45, -0.3, 1.7, -2.6, 3.1])
    g = torch.Generator().manual_seed(0)
    cold = torch.stack([sga(y, 1e-3, g) for _ in range(50)])
    assert torch.allclose(cold, torch.round(y).expand_as(cold), atol=1e-3)
    hot = torch.stack([sga(y, 1.0, g) for _ in range(200)])
    assert ((hot - torch.floor(y)) >= -1e-6).all() and ((hot - torch.ceil(y)) <= 1e-6).all()  # in [⌊y⌋, ⌈y⌉]
    assert (hot.std(0) > 0.05).all()  # still stochastic when hot
    # the schedule holds, then decays monotonically to tau_min
    taus = [sga_temperature(p) for p in np.linspace(0, 1, 21)]
    assert taus[0] == taus[2] == 0.5 and taus[-1] == pytest.approx(0.05)
    assert all(a >= b for a, b in zip(taus, taus[1:]))


def test_sga_passes_gradients_and_quantize_names_its_choices():
    y = torch.tensor([0.3, -1.2], requires_grad=True)
    sga(y, 0.5, torch.Generator().manual_seed(1)).sum().backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="choose from"):
        quantize(y, "softround")
    assert torch.equal(quantize(torch.tensor([0.4, 0.6]), "hard"), torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("dist", ["laplace", "gaussian"])
def test_entropy_model_probabilities_sum_to_one_over_the_support(dist):
    ys = torch.arange(-3000, 3001, dtype=torch.float64)  # wide enough for the tails of every case
    for mu, scale in [(0.0, 0.05), (0.3, 1.0), (-2.7, 7.5), (10.0, 40.0)]:
        m, b = torch.full_like(ys, mu), torch.full_like(ys, scale)
        p = cdf(ys + 0.5, m, b, dist) - cdf(ys - 0.5, m, b, dist)
        assert (p >= 0).all() and float(p.sum()) == pytest.approx(1.0, abs=1e-9)
        # the training rate floors each probability at P_MIN: at most len(ys) * P_MIN extra mass
        q = 2.0 ** -bits(ys, m, b, dist)
        assert 1.0 - 1e-9 <= float(q.sum()) <= 1.0 + len(ys) * P_MIN + 1e-9


def test_upsampling_matrices_are_pytorchs_bicubic():
    g = torch.randn(5, 7)
    for f in (2, 4):
        up = _upsampling_matrix(5, f, 5 * f) @ g @ _upsampling_matrix(7, f, 7 * f).T
        ref = F.interpolate(g[None, None], scale_factor=f, mode="bicubic", align_corners=False)[0, 0]
        torch.testing.assert_close(up, ref, rtol=1e-5, atol=1e-5)


def test_integer_arm_is_exact_per_wavefront_and_close_to_the_float_arm():
    torch.manual_seed(0)
    arm = ARM(12, (12, 12))
    grid = torch.randint(-6, 7, (9, 11))
    offsets = causal_offsets(2)
    ints = arm_to_integers(arm, 10)
    mu_all, s_all = integer_arm(gather_context(grid, offsets), ints, 10)
    mu_f, s_f = arm(gather_context(grid.float(), offsets))
    mu_c, s_c = arm.forward_grid(grid.float(), offsets)  # the convolutional form used in training
    torch.testing.assert_close(mu_c, mu_f, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s_c, s_f, rtol=1e-5, atol=1e-5)
    assert torch.allclose(mu_all.float(), mu_f, atol=0.05) and torch.allclose(s_all.float(), s_f, atol=0.05)
    canvas = LatentCanvas(
        [(9, 11)], offsets, 2
    )  # the decoder's buffer: only already "decoded" positions are set
    pos, bounds, ends = canvas.schedule()
    assert ends == [3 * 8 + 11] and len(bounds) == ends[0] + 1
    np_ints, seen = [p.numpy() for p in ints], torch.zeros(9 * 11, dtype=torch.bool)
    for j in range(ends[0]):
        p = pos[bounds[j] : bounds[j + 1]]
        raster = (p // canvas.width - canvas.tops[0]) * 11 + p % canvas.width - canvas.r
        mu, s = integer_arm_np(canvas.context(p), np_ints, 10)
        assert np.array_equal(mu, mu_all[raster].numpy()) and np.array_equal(s, s_all[raster].numpy())
        canvas.buffer[p] = grid.flatten()[raster].numpy()
        seen[raster] = True
    assert seen.all() and torch.equal(canvas.grids()[0], grid)
    assert float(scale_from_log(torch.tensor(100.0))) == pytest.approx(1e-3, rel=1e-3)


@pytest.mark.parametrize("interleave", [True, False])
def test_the_coding_order_reads_only_decoded_contexts_across_grids(interleave):
    """Several grids (one not coded, some narrower than the context) in one canvas: every position is coded once,
    each step's contexts are exactly its grid's causal neighbours decoded by earlier steps (never a neighbour from
    another grid, never one decoded later), and each grid is complete after its announced step."""
    shapes, coded, offsets = (
        [(6, 9), (3, 5), (2, 2), (1, 1), (2, 3)],
        [True, False, True, True, True],
        causal_offsets(2),
    )
    canvas = LatentCanvas(shapes, offsets, 2, coded)
    pos, bounds, ends = canvas.schedule(interleave)
    assert ends[1] == 0 and len(pos) == sum(h * w for (h, w), c in zip(shapes, coded) if c) == len(
        set(pos.tolist())
    )
    assert (np.diff(bounds) > 0).all()  # no empty step
    owner = {}  # flat position -> (grid, y, x)
    for i, ((h, w), top) in enumerate(zip(shapes, canvas.tops)):
        for y in range(h):
            for x in range(w):
                owner[(top + y) * canvas.width + canvas.r + x] = (i, y, x)
    step_of = {}
    for j in range(len(bounds) - 1):
        for q in pos[bounds[j] : bounds[j + 1]].tolist():
            step_of[q] = j
    for q, j in step_of.items():
        i, y, x = owner[q]
        assert j < ends[i]
        for dy, dx in offsets:
            n = q + dy * canvas.width + dx
            if 0 <= y + dy < shapes[i][0] and 0 <= x + dx < shapes[i][1]:
                assert owner[n] == (i, y + dy, x + dx)
                assert not coded[i] or step_of[n] < j  # decoded by an earlier step
            else:
                assert n not in owner  # outside its grid: a zero that is never written
    if interleave:
        assert len(bounds) - 1 == max(ends) == 3 * 5 + 9  # as many steps as the largest grid has wavefronts
    else:
        done = [e for e, c in zip(ends, coded) if c]
        assert done == sorted(done) and done[-1] == len(bounds) - 1  # one grid after the other


def test_context_columns_gradient_is_the_adjoint_of_the_gather():
    """The training ARM's context columns have a hand-written backward: checked against finite differences, and the
    columns hold each position's causal neighbours (a neighbour outside the grid reads zero)."""
    offsets = causal_offsets(2)
    g = torch.randn(7, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: context_columns(t, offsets), (g,))
    cols = context_columns(g, offsets).detach()
    assert cols.shape == (12, 63)
    for y in range(7):
        for x in range(9):
            want = [
                float(g.detach()[y + dy, x + dx]) if 0 <= y + dy and 0 <= x + dx < 9 else 0.0
                for dy, dx in offsets
            ]
            assert cols[:, y * 9 + x].tolist() == want


def test_integer_arm_matches_floor_division_on_large_negative_sums():
    """The numpy ARM floors by an arithmetic shift; the reference below divides with torch's floor rounding (the
    implementation every earlier file was written with): equal on every sum, negative ones included."""
    g = torch.Generator().manual_seed(1)
    params = [torch.randint(-2000, 2000, (12, 12), generator=g), torch.randint(-2000, 2000, (12,), generator=g),
              torch.randint(-2000, 2000, (12, 12), generator=g), torch.randint(-2000, 2000, (12,), generator=g),
              torch.randint(-2000, 2000, (2, 12), generator=g), torch.randint(-2000, 2000, (2,), generator=g)]  # fmt: skip
    ctx = torch.randint(-60, 61, (500, 12), generator=g)
    a = ctx.long() << 8
    for i in range(3):
        a = torch.div(a @ params[2 * i].T + (params[2 * i + 1] << 8), 2**7, rounding_mode="floor")
        a = a.clamp_min(0) if i < 2 else a
    assert (a < 0).any()  # the test reaches negative outputs
    mu, s = integer_arm_np(ctx.numpy(), [p.numpy() for p in params], 7)
    assert np.array_equal(mu, (a.double() / 256)[:, 0].numpy()) and np.array_equal(
        s, (a.double() / 256)[:, 1].numpy()
    )


def test_integer_arm_matches_the_reference_where_float64_sums_could_pass_2_53():
    """The largest latents and weights the format allows, positive weights so that sums add up: the layer's bound
    passes 2^53 and the ARM runs that layer in int64; the numbers are the reference's. (Trailing zeros of the
    shifted activations keep such float64 sums exact in practice, so this guards the fallback's result, not the
    need for it.)"""
    g = torch.Generator().manual_seed(2)
    lim = 2**15  # PARAM_SUPPORT
    params = [torch.randint(-lim, lim, (12, 12), generator=g), torch.randint(-lim, lim, (12,), generator=g),
              torch.randint(lim // 2, lim, (2, 12), generator=g), torch.randint(-lim, lim, (2,), generator=g)]  # fmt: skip
    ctx = torch.randint(
        -(2**16) + 1, 2**16, (300, 12), generator=g
    )  # MAX_GRID; positive weights: sums add up
    k = 3
    hidden = torch.div((ctx << 8) @ params[0].T + (params[1] << 8), 2**k, rounding_mode="floor").clamp_min(0)
    assert (
        float(hidden.abs().max()) * float(params[2].abs().sum(1).max()) >= 2.0**53
    )  # the second layer's bound
    out = torch.div(hidden @ params[2].T + (params[3] << 8), 2**k, rounding_mode="floor")
    mu, s = integer_arm_np(ctx.numpy(), [p.numpy() for p in params], k)
    assert np.array_equal(mu, (out.double() / 256)[:, 0].numpy()) and np.array_equal(
        s, (out.double() / 256)[:, 1].numpy()
    )
    # the decoder's per-grid plan from the header's maximum: the first layer in float64, the second in int64
    arm = IntegerARM([p.numpy() for p in params], k)
    plan = arm.plan(2**16 - 1)
    assert plan == [True, False] and arm.plan(3) == [True, True]
    mu_p, s_p = arm(ctx.numpy(), plan)
    assert np.array_equal(mu_p, mu) and np.array_equal(s_p, s)


def test_bad_files_give_clear_errors(encoded):
    data = encoded.data
    with pytest.raises(bs.BitstreamError, match="magic"):
        decode(b"PNG" + data[3:])
    with pytest.raises(bs.BitstreamError, match="Truncated"):
        decode(data[:-5])
    with pytest.raises(bs.BitstreamError, match="Truncated"):
        decode(data[:9])
    with pytest.raises(bs.BitstreamError, match="version"):
        decode(data[:3] + bytes([99]) + data[4:])
    corrupt = bytearray(data)
    corrupt[-2] ^= 0xFF
    with pytest.raises(bs.BitstreamError, match="checksum"):
        decode(bytes(corrupt))


def test_header_round_trip_and_model_shapes():
    n_tensors = len(bs.param_shapes(3, (4,), 1, 1, (4,)))
    h = bs.Header(
        "eqlinr", 37, 51, 1e-3, 3, (4,), 1, 1, (4,), "gaussian", 7, 6, 9, (0, 3, 12), tuple(range(n_tensors))
    )
    words = np.arange(5, dtype=np.uint32)
    h2, w2 = bs.unpack(bs.pack(h, words))
    assert h2 == bs.Header(**{**h.__dict__, "lmbda": h2.lmbda}) and h2.lmbda == pytest.approx(1e-3)
    assert np.array_equal(w2, words)
    model = OverfitCodec(37, 51, 3, (4,), 1, 1, (4,))
    shapes = [
        tuple(p.shape)
        for _, layers in model.coded_modules()
        for layer in layers
        for p in (layer.weight, layer.bias)
    ]
    assert shapes == h.param_shapes()


def test_quality_maps_to_lambda_and_rejects_out_of_range():
    assert lambda_for_quality(1) > lambda_for_quality(8)
    with pytest.raises(ValueError, match="quality must be in 1..8"):
        lambda_for_quality(9)
    with pytest.raises(ValueError, match="choose from"):
        registry.build("coolchic", "tiny", distribution="cauchy")


def test_cli_encode_decode_info_round_trip(tmp_path, photo):

    from PIL import Image

    from trustvis.cli import main

    src = tmp_path / "photo.png"
    Image.fromarray(photo).convert("RGBA").save(src)  # RGBA input is converted to RGB
    tvc, rec, dec = tmp_path / "photo.tvc", tmp_path / "rec.png", tmp_path / "dec.png"
    argv = ["codec", "encode", str(src), str(tvc), "--method", "coolchic", "--iterations", "10", "--quality", "3",
            "--recon", str(rec), "--no-progress", "--set", "n_grids=4"]  # fmt: skip
    assert main(argv) == 0
    assert main(["codec", "decode", str(tvc), str(dec), "--no-progress"]) == 0
    assert np.array_equal(np.asarray(Image.open(rec)), np.asarray(Image.open(dec)))
    assert main(["codec", "info", str(tvc), "--json"]) == 0
    # bad input: a PNG given to the decoder, a .tvc given to the encoder, an unknown codec
    assert main(["codec", "decode", str(src), str(tmp_path / "x.png")]) == 2
    assert main(["codec", "encode", str(tvc), str(tmp_path / "x.tvc")]) == 2
    assert main(["codec", "encode", str(src), str(tmp_path / "x.tvc"), "--method", "jpeg"]) == 2
    assert not (tmp_path / "x.tvc").exists() and not (tmp_path / "x.png").exists()


def test_cli_info_prints_the_header(tmp_path, encoded, capsys):
    import json

    from trustvis.cli import main

    f = tmp_path / "a.tvc"
    f.write_bytes(encoded.data)
    assert main(["codec", "info", str(f), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["method"] == "eqlinr" and info["height"] == 37 and info["width"] == 51
    assert info["bytes"] == len(encoded.data)


def test_encode_runs_exactly_the_iteration_budget_it_is_given(photo, monkeypatch):
    """``encode(img, iterations=N)`` takes N Adam steps (counted on the optimiser itself, not only in the
    stats) without changing the method's config; without it, the config's budget."""
    steps = []
    adam_step = torch.optim.Adam.step
    monkeypatch.setattr(
        torch.optim.Adam, "step", lambda self, *a, **k: steps.append(1) or adam_step(self, *a, **k)
    )
    m = registry.build("coolchic", "tiny")  # iterations=4 in the preset
    res = m.encode(photo, iterations=7, progress=False)
    assert len(steps) == 7 and res.stats["iterations"] == 7 and m.config.iterations == 4
    assert torch.equal(m.decompress(res.data), res.x_hat)  # a complete, decodable file
    steps.clear()
    assert m.encode(photo, progress=False).stats["iterations"] == 4 and len(steps) == 4
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="iterations must be an integer >= 1"):
            m.encode(photo, iterations=bad, progress=False)
    assert not steps[4:]  # refused before any work


def test_encode_shows_progress_by_default_and_progress_false_is_silent(photo, capsys):
    m = registry.build("eqlinr", "tiny")
    m.encode(photo, iterations=3, progress=False)
    assert capsys.readouterr() == ("", "")
    m.encode(photo, iterations=3)  # the default: a tqdm bar of the iterations on stderr
    err = capsys.readouterr().err
    assert "eqlinr λ=" in err and "0/3" in err  # tqdm draws the total at once; later refreshes are timed


def test_cli_encode_reports_its_budget_and_no_progress_is_silent(tmp_path, photo, capsys):
    from PIL import Image

    from trustvis.cli import main

    src = tmp_path / "photo.png"
    Image.fromarray(photo).save(src)
    argv = ["codec", "encode", str(src), str(tmp_path / "a.tvc"), "--preset", "tiny", "--iterations", "5"]
    assert main([*argv, "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "(5 iterations)" in out and err == ""
    assert main(argv[:3] + [str(tmp_path / "b.tvc")] + argv[4:]) == 0
    out, err = capsys.readouterr()
    assert "(5 iterations)" in out and "0/5" in err
    helptext = __import__("trustvis.cli", fromlist=["build_parser"]).build_parser()
    with pytest.raises(SystemExit):
        helptext.parse_args(["codec", "encode", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "default 3000 with --preset default" in shown and "about a minute" in shown
