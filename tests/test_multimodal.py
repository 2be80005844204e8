"""Task ``multimodal`` and its methods (issue 25): xmodal's frozen VAEs in stage 2, adding a modality with
``model.vaes_from`` (the loaded VAEs stay bit-identical), latentreg's least-squares loss, JMVAE's shared space and
its unpaired-only loss, the metrics on hand-made latents, the judges, the speaker split's language rule, the pool +
pair batches, and the command line (train, predict of images and clips with --maps, eval)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from trustvis import registry
from trustvis.cli import main
from trustvis.config import ConfigError, RunConfig, make_run_config, to_dict
from trustvis.data.crossmodal import DigitSpeech
from trustvis.data.speech import Clip, speaker_split
from trustvis.engine import Trainer, load_method, seed_everything
from trustvis.engine.checkpoint import build_method, save_final
from trustvis.tasks import get_task
from trustvis.tasks.multimodal import (
    Judges,
    MultimodalTask,
    PoolPairDataset,
    crossmodal_metrics,
    image_inputs,
    nearest_hits,
    retrieval,
    speech_stats,
    tiny_multimodal_folder,
)

QUIET = ["train.progress=false", "train.device=cpu", "train.log_every=0", "train.ckpt_every=0"]


# ----------------------------------------------------------------------------------------------------
# tiny data


def _bar(c: int, rng, size: int = 12) -> np.ndarray:
    img = rng.integers(0, 40, (size, size)).astype(np.uint8)
    img[3 * c + 1 : 3 * c + 3, 2:10] = 230
    return img


def _tiny(n_mels: int = 40, frames: int = 101, *, seed: int = 0, n_images: int = 12, n_clips: int = 6,
          synthetic: tuple[bool, ...] = ()) -> DigitSpeech:  # fmt: skip
    """3 classes: gray 12x12 images with a bar whose row is the class; log-mel-like clips whose mean is the class
    (``synthetic[k]`` marks clip k synthetic); unpaired."""
    rng = np.random.default_rng(seed)
    image_labels = np.arange(n_images) % 3
    images = np.stack([_bar(int(c), rng) for c in image_labels])
    speech_labels = np.arange(n_clips) % 3
    speech = (rng.normal(0, 1, (n_clips, n_mels, frames)) + 2.0 * speech_labels[:, None, None]).astype(
        np.float32
    )
    syn = list(synthetic) + [False] * (n_clips - len(synthetic))
    clips = [Clip(f"spk{k % 2}_{k}.wav", int(c), f"tiny/spk{k % 2}", "en", "tiny", syn[k])
             for k, c in enumerate(speech_labels)]  # fmt: skip
    return DigitSpeech(images, image_labels.astype(np.int64), speech, speech_labels.astype(np.int64), clips)


def _run(name: str, *overrides: str, steps: int = 2) -> RunConfig:
    return make_run_config(name, "tiny", overrides=[*QUIET, f"train.steps={steps}", "train.batch_size=4",
                                                    *overrides])  # fmt: skip


def _method(run: RunConfig):
    seed_everything(0)
    return registry.get(run.method).cls(run.model)


def _pool(method, fraction: float = 1.0, **kw) -> PoolPairDataset:
    data = _tiny(method.config.n_mels, method.config.frames, **kw).with_pairs(fraction)
    method.set_speech_stats(*speech_stats(data))
    return PoolPairDataset(data, method.make_transform(True))


def _batch(ds: PoolPairDataset, n: int = 4) -> dict:
    return torch.utils.data.default_collate([ds[i] for i in range(n)])


def _tensors(method, prefix: str) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in method.state_dict().items() if k.startswith(prefix)}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------------------------------
# xmodal: stage 2 leaves the VAEs alone


@pytest.mark.parametrize(("name", "rec"), [("xmodal", 0.0), ("xmodal", 1.0), ("latentreg", 0.0)])
def test_stage_two_changes_no_vae_parameter(name, rec, tmp_path):
    """Through the Trainer: after ``vae_steps`` steps the VAEs (and speech statistics) never change again, bit for
    bit, also with the associators' reconstruction term; the VAEs did train in stage 1 and the associators in
    stage 2 (the test is not blind)."""
    run = _run(name, "model.vae_steps=2", f"model.assoc_rec={rec}", steps=5)
    method = _method(run)
    ds = _pool(method)
    init_vae, init_assoc = _tensors(method, "vaes."), _tensors(method, "associators.")
    snap: dict[str, dict] = {}

    def at_end(trainer):
        if trainer.step == 2:
            snap["vae"], snap["assoc"] = _tensors(method, "vaes."), _tensors(method, "associators.")
            snap["stats"] = _tensors(method, "speech_")

    trainer = Trainer(method, run, tmp_path / "run")
    trainer.add_callback("on_step_end", at_end)
    trainer.fit(ds)
    assert _changed(init_vae, snap["vae"])  # stage 1 trained the VAEs ...
    assert _same(snap["assoc"], init_assoc)  # ... and nothing else
    assert _same(_tensors(method, "vaes."), snap["vae"])  # stage 2: no VAE tensor moved
    assert _same(_tensors(method, "speech_"), snap["stats"])
    assert _changed(snap["assoc"], _tensors(method, "associators."))  # the associators did train


def test_stage_two_by_hand_reports_its_stage_and_needs_pairs():
    run = _run("xmodal", "model.vae_steps=1")
    method = _method(run)
    method.optimizers = method.configure_optimizers(run.train)
    batch = _batch(_pool(method))
    method.on_step_start(0)
    assert float(method.training_step(batch)["stage"]) == 1.0
    vae = _tensors(method, "vaes.")
    method.on_step_start(1)
    out = method.training_step(batch)
    assert float(out["stage"]) == 2.0 and torch.isfinite(out["loss"])
    assert _same(_tensors(method, "vaes."), vae)
    with pytest.raises(ValueError, match="data.fraction"):
        method.training_step(_batch(_pool(method, fraction=0.0)))
    assert method.needs_pairs(2) and not method.needs_pairs(1)


# ----------------------------------------------------------------------------------------------------
# vaes_from: adding a modality


def _train_into(run: RunConfig, out: Path, ds=None):
    method = _method(run)
    Trainer(method, run, out).fit(ds if ds is not None else _pool(method))
    return method


@pytest.fixture(scope="module")
def run_a(tmp_path_factory) -> Path:
    """A finished tiny xmodal run with modalities (image, speech), trained by the Trainer into its folder."""
    out = tmp_path_factory.mktemp("vaes") / "a"
    _train_into(_run("xmodal", "model.vae_steps=2", steps=3), out)
    assert (out / "model.json").is_file() and (out / "model.safetensors").is_file()
    return out


def test_a_new_modality_trains_alone_and_the_loaded_vaes_stay_bit_identical(run_a, tmp_path):
    a = load_file(str(run_a / "model.safetensors"))
    run = _run("xmodal", "model.modalities=[image,speech,label]", f"model.vaes_from={run_a}", "model.vae_steps=2",
               steps=4)  # fmt: skip
    b = _method(run)
    assert b.frozen_vaes == ("image", "speech") and b.trained_vaes() == ["label"]
    label_init = _tensors(b, "vaes.label.")
    ds = _pool(b, seed=5)  # sets other speech statistics: ignored, A's came with its speech VAE
    Trainer(b, run, tmp_path / "b").fit(ds)
    saved = load_file(str(tmp_path / "b" / "model.safetensors"))
    loaded = [k for k in a if k.startswith(("vaes.image.", "vaes.speech.")) or k.startswith("speech_")]
    assert len(loaded) > 10 and "speech_mean" in loaded and "speech_std" in loaded
    for k in loaded:
        assert torch.equal(b.state_dict()[k], a[k]), k
        assert torch.equal(saved[k], a[k]), k
    assert not torch.equal(a["speech_mean"], torch.as_tensor(speech_stats(ds.data)[0]))  # not blind
    assert _changed(label_init, _tensors(b, "vaes.label."))  # the label VAE did train
    assert any(k.startswith("associators.label_to_image") for k in saved)

    out = b.eval().predict({"image": _batch(ds)["image"]})
    assert out["z_label"].shape == (4, 2) and out["x_label"].shape == (4, b.config.num_classes)
    assert ((out["x_label"] >= 0) & (out["x_label"] <= 1)).all()
    assert {"z_image", "z_speech", "x_image", "x_speech"} <= set(out)

    # the run loads without its vaes_from folder (every weight is in its own model.safetensors)
    moved = run_a.with_name("a_moved")
    run_a.rename(moved)
    try:
        again = load_method(tmp_path / "b").predict({"image": _batch(ds)["image"]})
    finally:
        moved.rename(run_a)
    for k in out:
        torch.testing.assert_close(again[k], out[k], rtol=0, atol=0)


def test_every_vae_loaded_skips_stage_one(run_a):
    m = _method(_run("latentreg", f"model.vaes_from={run_a}", "model.vae_steps=5"))
    assert m.trained_vaes() == [] and m.stage1_steps() == 0 and m.needs_pairs(1)
    assert set(m.configure_optimizers(make_run_config("latentreg", "tiny").train)) == {"assoc"}


def test_vaes_from_with_init_from_is_refused(run_a, tmp_path):
    init = _saved("xmodal", tmp_path / "init")
    run = _run("xmodal", f"model.vaes_from={run_a}", f"train.init_from={init}")
    with pytest.raises(ConfigError, match=r"model.vaes_from=.* and train.init_from="):
        get_task("multimodal").prepare(run, set())


def _saved(name: str, out: Path, *overrides: str) -> Path:
    run = make_run_config(name, "tiny", overrides=list(overrides))
    method = build_method(run, pretrained=False)
    save_final(method, out, to_dict(run), 0)
    return out


@pytest.mark.parametrize("kind", ["empty folder", "no weights", "classifier", "jmvae", "other latent"])
def test_vaes_from_refuses_what_it_cannot_load(kind, run_a, tmp_path):
    if kind == "empty folder":
        src = tmp_path / "empty"
        src.mkdir()
    elif kind == "no weights":
        src = tmp_path / "copy"
        src.mkdir()
        (src / "model.json").write_text((run_a / "model.json").read_text())
    elif kind == "other latent":
        src = _saved("xmodal", tmp_path / "other", "model.image_latent=3")
    else:
        src = _saved(kind, tmp_path / kind)
    with pytest.raises(ConfigError) as e:
        _method(_run("xmodal", "model.modalities=[image,speech,label]", f"model.vaes_from={src}"))
    msg = str(e.value)
    assert msg.startswith(f"model.vaes_from={src}") and "\n" not in msg
    if kind in ("classifier", "jmvae"):
        assert repr(kind) in msg and "xmodal" in msg
    if kind == "other latent":
        assert "vaes.image." in msg


# ----------------------------------------------------------------------------------------------------
# latentreg: the squared error of the posterior means


def test_latentreg_loss_is_the_squared_error_of_means():
    m = _method(_run("latentreg", "model.assoc_hidden=0"))  # linear associators: easy to set by hand
    batch = _batch(_pool(m))
    with torch.no_grad():
        for vae in m.vaes.values():  # every posterior mean is the constant (0.5, -1, 2, 0.25)
            last = vae.encoder[1][-1]
            last.weight.zero_()
            last.bias[: vae.latent] = torch.tensor([0.5, -1.0, 2.0, 0.25])
        for assoc in m.associators.values():  # ... and every regressor returns it, with some log-variance
            lin = assoc.net[-1]
            lin.weight.zero_()
            lin.bias.copy_(torch.tensor([0.5, -1.0, 2.0, 0.25, 3.0, -2.0, 1.0, 0.5]))
    assert float(m.association_loss(batch).detach()) == 0.0  # a KL between these Gaussians would not be 0
    with torch.no_grad():
        m.associators["image_to_speech"].net[-1].bias[1] += 0.5
    torch.testing.assert_close(m.association_loss(batch), torch.tensor(0.25))

    # on trained-like weights: the summed per-pair squared distance of the means, the associators' variance unused
    m = _method(_run("latentreg"))
    batch = _batch(_pool(m))
    with torch.no_grad():
        mu = {k: m.encode(k, batch[f"pair_{k}"]) for k in ("image", "speech")}
    want = sum((m.associators[f"{a}_to_{b}"](mu[a])[0] - mu[b]).pow(2).sum(1).mean()
               for a, b in (("image", "speech"), ("speech", "image")))  # fmt: skip
    torch.testing.assert_close(m.association_loss(batch), want)
    x = _method(_run("xmodal", "model.assoc_sample=false"))
    x.load_state_dict(m.state_dict())
    assert not torch.allclose(x.association_loss(batch), want)  # xmodal's KL is another loss


# ----------------------------------------------------------------------------------------------------
# jmvae


def test_jmvae_translates_within_one_shared_space():
    m = _method(_run("jmvae")).eval()
    batch = _batch(_pool(m))
    z = m.encode("image", batch["image"])
    assert torch.equal(m.translate("image", "speech", batch["image"]), z)
    assert torch.equal(m.translate("speech", "image", batch["speech"]), m.encode("speech", batch["speech"]))
    out = m.predict({"image": batch["image"]})
    assert torch.equal(out["z_speech"], out["z"]) and out["x_speech"].shape == (4, 40, m.config.frames)


def test_jmvae_without_pairs_uses_only_the_unimodal_elbos():
    m = _method(_run("jmvae")).train()
    batch = _batch(_pool(m, fraction=0.0))
    assert not batch["paired"].any()
    batch["pair_image"] = torch.full_like(batch["pair_image"], float("nan"))  # never read without pairs
    batch["pair_speech"] = torch.full_like(batch["pair_speech"], float("nan"))
    torch.manual_seed(3)
    out = m.training_step(batch)
    torch.manual_seed(3)
    want = sum(m.negative_elbo(k, batch[k]).mean() for k in ("image", "speech"))
    assert torch.isfinite(out["loss"]) and "nelbo_pair" not in out
    torch.testing.assert_close(out["loss"], want)
    m.config.unpaired_weight = 0.0
    assert float(m.training_step(batch)["loss"].detach()) == 0.0

    # with pairs the pair term is there (the comparison above is not blind)
    m.config.unpaired_weight = 1.0
    paired = m.training_step(_batch(_pool(m, fraction=1.0)))
    assert "nelbo_pair" in paired and torch.isfinite(paired["loss"])


# ----------------------------------------------------------------------------------------------------
# metrics on hand-made latents


def test_nearest_hits_on_known_latents():
    q = np.array([[0.0, 0.0], [10.0, 10.0], [0.2, -0.1]])
    g = np.array([[0.0, 1.0], [9.0, 10.0]])
    assert nearest_hits(q, np.array([0, 1, 0]), g, np.array([0, 1])).tolist() == [True, True, True]
    assert nearest_hits(q, np.array([0, 1, 0]), g, np.array([1, 0])).tolist() == [False, False, False]
    assert nearest_hits(q, np.array([0, 1, 1]), g, np.array([0, 1])).tolist() == [True, True, False]
    assert nearest_hits(q, np.array([0, 1, 0]), g[:0], np.array([])).tolist() == [False] * 3


class _Fake:
    """A method whose latent is the digit: an image's bar row, a clip's mean; ``wrong`` shifts the digit of
    translations (of synthetic clips only with ``wrong="synthetic"``: feature [1, 0] flags them)."""

    modalities = ("image", "speech")

    def __init__(self, wrong: str = "") -> None:
        self.wrong = wrong

    def eval(self):
        return self

    def encode(self, modality, t):
        if modality == "image":
            rows = t[:, 0].mean(2)  # (B, H): the bar's rows are bright
            return torch.div(rows.argmax(1) - 1, 3, rounding_mode="floor").float()[:, None]
        return t[:, 0].mean(1, keepdim=True) / 2  # the first band's mean is 2 x the digit

    def translate(self, source, target, t):
        z = self.encode(source, t).reshape(len(t), 1)
        if self.wrong == "all" or (self.wrong == "synthetic" and source == "speech"):
            flag = torch.ones(len(t), 1) if self.wrong == "all" else (t[:, 1, :1] > 50).float()
            z = (z + flag) % 3
        return z

    def decode(self, modality, z):
        d = z.reshape(-1).round().long().clamp(0, 2).numpy()
        if modality == "image":
            rng = np.random.default_rng(9)
            return torch.from_numpy(np.stack([_bar(int(c), rng) for c in d])[:, None] / 255.0).float()
        return torch.from_numpy(2.0 * d[:, None, None] + np.zeros((len(d), 8, 11))).float()


def _fake_split(seed: int, synthetic: tuple[bool, ...] = ()) -> DigitSpeech:
    data = _tiny(8, 11, seed=seed, n_clips=6, synthetic=synthetic)
    data.speech[:] = 2.0 * data.speech_labels[:, None, None]  # noise-free: the fake's latent is exact
    data.speech[:, 1, 0] = [100.0 if c.synthetic else 0.0 for c in data.clips]
    return data


def test_encode_of_the_fake_is_the_digit():
    data = _fake_split(0)
    x = torch.from_numpy(image_inputs(data.images))
    assert (_Fake().encode("image", x).reshape(-1) == torch.from_numpy(data.image_labels)).all()
    zs = _Fake().encode("speech", torch.from_numpy(data.speech)).reshape(-1)
    assert (zs == torch.from_numpy(data.speech_labels)).all()


def test_retrieval_is_one_when_translations_land_on_the_digit_and_zero_when_not():
    data = _fake_split(0)
    good, bad = retrieval(_Fake(), data), retrieval(_Fake("all"), data)
    assert good["r1_speech_to_image"] == good["r1_image_to_speech"] == 1.0
    assert bad["r1_speech_to_image"] == bad["r1_image_to_speech"] == 0.0
    assert good["r1_speech_to_image_real"] == 1.0 and np.isnan(good["r1_speech_to_image_synthetic"])


def test_crossmodal_metrics_report_real_and_synthetic_clips_apart():
    syn = (False, False, False, True, True, True)
    train, test = _fake_split(0), _fake_split(1, syn)
    judges = Judges(train, image_size=12)
    res = crossmodal_metrics(_Fake("synthetic"), test, judges)
    assert (res["n_images"], res["n_clips_real"], res["n_clips_synthetic"]) == (12, 3, 3)
    assert res["r1_speech_to_image_real"] == 1.0 and res["r1_speech_to_image_synthetic"] == 0.0
    assert res["r1_speech_to_image"] == 0.5 and res["r1_image_to_speech"] == 1.0
    assert res["acc_speech_to_image_real"] == 1.0 and res["acc_speech_to_image_synthetic"] == 0.0
    assert res["acc_speech_to_image"] == 0.5 and res["acc_image_to_speech"] == 1.0
    assert res["judge_image_acc"] == 1.0
    assert {"judge_speech_acc_real", "judge_speech_acc_synthetic"} <= set(res)
    assert "acc_speech_to_label" not in res  # no label modality
    no_judges = crossmodal_metrics(_Fake(), test, None)
    assert "acc_speech_to_image" not in no_judges and no_judges["r1_speech_to_image"] == 1.0


def test_judges_fitted_on_separable_data_classify_held_out_data():
    train, test = _tiny(8, 11, seed=0), _tiny(8, 11, seed=1)
    for size in (12, 8):
        judges = Judges(train, image_size=size)
        assert (judges.judge_images(image_inputs(test.images)[:, :1]) == test.image_labels).all()
        assert (judges.judge_speech(test.speech) == test.speech_labels).all()
    shuffled = judges.judge_speech(test.speech[::-1].copy())
    assert not (shuffled == test.speech_labels).all()  # the judge reads the clip, not its position


# ----------------------------------------------------------------------------------------------------
# speaker split: held-out voices speak training languages


def _voices() -> list[Clip]:
    """Real speakers: 3 bilingual (en+fr, en+es, de+it), 6 English, 3 Spanish, 2 Russian and 5 languages spoken by
    one speaker each; synthetic: 6 English voices and 1 Welsh one. Two digits each."""
    langs = {"bi_enfr": ("en", "fr"), "bi_enes": ("en", "es"), "bi_deit": ("de", "it")}
    langs.update({f"en{i}": ("en",) for i in range(6)})
    langs.update({f"es{i}": ("es",) for i in range(3)})
    langs.update({f"ru{i}": ("ru",) for i in range(2)})
    langs.update({f"solo_{lang}": (lang,) for lang in ("ja", "pt", "nl", "pl", "sv")})
    clips = [Clip(Path(f"{spk}/{lang}_{d}.wav"), d, f"real/{spk}", lang, "tuxpaint", False)
             for spk, ls in langs.items() for lang in ls for d in (0, 1)]  # fmt: skip
    syn = {f"syn{i}": "en" for i in range(6)} | {"syn_cy": "cy"}
    clips += [Clip(Path(f"{spk}/{d}.wav"), d, f"espeak-ng/{spk}", lang, "espeak-ng", True)
              for spk, lang in syn.items() for d in (0, 1)]  # fmt: skip
    return clips


@pytest.mark.parametrize("seed", range(8))
def test_speaker_split_keeps_held_out_voices_in_training_languages(seed):
    clips = _voices()
    sp = speaker_split(clips, seed=seed)
    speakers = {k: {c.speaker for c in v} for k, v in sp.items()}
    assert not (speakers["train"] & speakers["val"]) and not (speakers["train"] & speakers["test"])
    assert not (speakers["val"] & speakers["test"])
    assert sorted(str(c.path) for v in sp.values() for c in v) == sorted(str(c.path) for c in clips)
    heard = {c.language for c in sp["train"]}
    for held in ("val", "test"):
        assert {c.language for c in sp[held]} <= heard, (held, {c.language for c in sp[held]} - heard)
        assert sp[held], f"{held} is empty"
    speakers_of: dict[str, set[str]] = {}
    for c in clips:
        speakers_of.setdefault(c.language, set()).add(c.speaker)
    for lang, who in speakers_of.items():
        if len(who) == 1:
            assert who <= speakers["train"], lang
    for c in clips:  # a speaker's every clip in one split, every language of a bilingual voice included
        assert sum(c.speaker in s for s in speakers.values()) == 1


# ----------------------------------------------------------------------------------------------------
# pool + pair batches


def test_pool_pair_items_cycle_through_both_pools_and_the_pairs():
    data = _tiny(4, 5, n_images=5, n_clips=9).with_pairs(0.5, seed=1)
    to_t = registry.build("xmodal", "tiny").make_transform(False)
    ds = PoolPairDataset(data, to_t)
    n_pairs = len(data.pairs)
    assert len(ds) == 9 and 1 < n_pairs < 5
    for k in range(len(ds)):
        item = ds[k]
        assert item["label"] == data.image_labels[k % 5] and item["speech_label"] == data.speech_labels[k % 9]
        assert torch.equal(item["speech"], torch.from_numpy(data.speech[k % 9]))
        pi, pj = data.pairs[k % n_pairs]
        assert (
            item["paired"] is True and item["pair_label"] == data.speech_labels[pj] == data.image_labels[pi]
        )
        assert torch.equal(item["pair_image"], to_t(np.repeat(data.images[pi][..., None], 3, axis=2)))
        assert torch.equal(item["pair_speech"], torch.from_numpy(data.speech[pj]))
    assert len(PoolPairDataset(_tiny(4, 5, n_images=12, n_clips=6), to_t)) == 12

    none = PoolPairDataset(_tiny(4, 5).with_pairs(0.0), to_t)
    batch = _batch(none)
    assert not batch["paired"].any() and not batch["pair_image"].any() and not batch["pair_speech"].any()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tiny_multimodal_folder(tmp_path_factory.mktemp("mm") / "data")


def _folder_run(name: str, folder: Path, *overrides: str) -> RunConfig:
    run = _run(name, "data.name=folder", f"data.root={folder}", "data.seconds=0.5", *overrides)
    get_task("multimodal").prepare(run, set())
    return run


def test_datasets_refuse_an_associator_run_without_pairs(folder):
    run = _folder_run("xmodal", folder, "data.fraction=0.0")
    assert run.model.frames == 51 and run.model.image_size == 20
    with pytest.raises(ConfigError, match=r"data\.fraction=0\.0 pairs none of the 6 training clips"):
        MultimodalTask().datasets(run, _method(run))
    # no associator step, or a method that also learns without pairs: accepted
    stage1 = _folder_run("xmodal", folder, "data.fraction=0.0", "model.vae_steps=2")
    train, val = MultimodalTask().datasets(stage1, _method(stage1))
    assert len(train) == 12 and not train[0]["paired"] and len(val.speech) == 3
    jm = _folder_run("jmvae", folder, "data.fraction=0.0")
    MultimodalTask().datasets(jm, _method(jm))


def test_datasets_set_speech_statistics_and_check_the_frames(folder):
    run = _folder_run("xmodal", folder, "data.fraction=0.5")
    m = _method(run)
    train, _ = MultimodalTask().datasets(run, m)
    assert len(train.data.pairs) == 3 and train[0]["speech"].shape == (40, 51)
    torch.testing.assert_close(m.speech_mean, torch.from_numpy(speech_stats(train.data)[0]).float())
    run.model.frames = 101  # a config that does not match 0.5 s clips
    with pytest.raises(ConfigError, match=r"model\.n_mels, model\.frames"):
        MultimodalTask().datasets(run, _method(run))


# ----------------------------------------------------------------------------------------------------
# command line


@pytest.fixture(scope="module")
def cli_run(folder, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("cli") / "run"
    sets = [a for kv in MultimodalTask().tiny_overrides(folder) for a in ("--set", kv)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRUSTVIS_HOME", str(run.parent / "home"))
        argv = [
            "train",
            "xmodal",
            "--preset",
            "tiny",
            "--out",
            str(run),
            *sets,
            "--set",
            "train.progress=false",
        ]
        assert main(argv) == 0
    return run


def test_cli_predict_gives_a_record_per_image_and_clip_and_the_generated_maps(
    cli_run, folder, tmp_path, capsys
):
    capsys.readouterr()
    maps = tmp_path / "maps"
    assert main(["predict", str(cli_run), str(folder / "test"), "--maps", str(maps), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["errors"] == []
    recs = {Path(r["path"]).relative_to(folder / "test").as_posix(): r for r in doc["results"]}
    images = sorted(
        p.relative_to(folder / "test").as_posix() for p in (folder / "test" / "image").rglob("*.png")
    )
    clips = sorted(
        p.relative_to(folder / "test").as_posix() for p in (folder / "test" / "speech").rglob("*.wav")
    )
    assert sorted(recs) == sorted(images + clips) and len(images) == 12 and len(clips) == 6
    for key, r in recs.items():
        mine, other = ("image", "speech") if key in images else ("speech", "image")
        assert r["modality"] == mine and r["dim"] == len(r["z"]) == 4 and len(r[f"z_{other}"]) == 4
        assert f"z_{mine}" not in r and np.isfinite(r["z"]).all()
        png = Path(r["generated"])
        assert png.parent == maps and png.is_file()
        assert png.stem.endswith("_logmel" if mine == "image" else "_image")
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] >= 40
    assert len(list(maps.glob("*.png"))) == 18


def test_cli_eval_reports_cross_modal_accuracy_and_retrieval(cli_run, folder, capsys):
    capsys.readouterr()
    assert main(["eval", str(cli_run), "--data", str(folder), "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("acc_speech_to_image", "acc_image_to_speech", "r1_speech_to_image", "r1_image_to_speech",
                "judge_image_acc", "judge_speech_acc_real"):  # fmt: skip
        assert 0.0 <= res[key] <= 1.0, key
    assert (res["n_images"], res["n_clips_real"], res["n_clips_synthetic"]) == (12, 6, 0)
    assert (
        res["judge_image_acc"] == 1.0 and res["judge_speech_acc_real"] == 1.0
    )  # the tiny folder is separable
    assert (cli_run / "eval.json").is_file()


def test_cli_eval_without_a_training_split_reports_retrieval_only(cli_run, folder, tmp_path, capsys):
    root = tmp_path / "no_train"
    shutil.copytree(folder / "test", root / "test")
    capsys.readouterr()
    assert main(["eval", str(cli_run), "--data", str(root), "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert "r1_speech_to_image" in res and "acc_speech_to_image" not in res
    assert "accuracy judges need a training split" in res["note"]


def test_the_label_vae_uses_its_own_beta_and_encodes_the_class():
    """A one-hot label carries about as much as a unit-weight KL costs: at beta 1 the label VAE settles near its
    prior (every class decoded alike, seen in the bench); at label_beta 0.1 its latent carries the class."""
    run = make_run_config("xmodal", "tiny", overrides=["model.modalities=[image,speech,label]", "model.hidden=64",
                                                       "model.label_latent=4", "model.label_beta=0.1"])  # fmt: skip
    seed_everything(0)
    m = registry.get("xmodal").cls(run.model)
    y = torch.arange(10).repeat(8)
    torch.manual_seed(5)
    got = m.negative_elbo("label", y)
    torch.manual_seed(5)
    want = -m.vaes["label"].elbo(m.prepare("label", y), beta=0.1)["elbo"]
    torch.testing.assert_close(got, want)
    opt = torch.optim.Adam(m.vaes["label"].parameters(), lr=3e-3)
    for _ in range(400):
        loss = m.negative_elbo("label", y).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        decoded = m.decode("label", m.encode("label", torch.arange(10))).argmax(1)
    assert (decoded == torch.arange(10)).float().mean() >= 0.9, decoded
