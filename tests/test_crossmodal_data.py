"""Image ↔ speech digit pairs (issue 25's data): same-digit pairs, the paired fraction, nested fractions, and the
loader on the installed packages."""

from __future__ import annotations

import numpy as np
import pytest

from trustvis.data.crossmodal import load_digit_speech, pair_indices


def _labels():
    return np.repeat(np.arange(10), 30), np.tile(np.arange(10), 20)  # 300 images, 200 clips


def test_pairs_join_the_same_digit_once_each():
    img, sp = _labels()
    pairs = pair_indices(img, sp, 0.5, seed=3)
    assert pairs.shape == (100, 2)
    assert np.all(img[pairs[:, 0]] == sp[pairs[:, 1]])
    assert len(set(pairs[:, 0])) == 100 and len(set(pairs[:, 1])) == 100  # no image or clip used twice
    assert pair_indices(img, sp, 0.0).shape == (0, 2)
    assert pair_indices(img, sp, 1.0).shape == (200, 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pair_indices(img, sp, 1.5)


def test_smaller_fractions_are_subsets_and_seeds_differ():
    img, sp = _labels()
    sets = [{tuple(p) for p in pair_indices(img, sp, f, seed=1)} for f in (0.01, 0.05, 0.1, 1.0)]
    assert [len(s) for s in sets] == [2, 10, 20, 200]
    assert all(a <= b for a, b in zip(sets, sets[1:]))
    assert {tuple(p) for p in pair_indices(img, sp, 0.1, seed=2)} != sets[2]


def test_a_digit_without_images_left_stays_unpaired():
    img = np.array([0, 0, 1])
    sp = np.array([0, 0, 0, 1, 1])
    pairs = pair_indices(img, sp, 1.0)
    assert sorted(sp[pairs[:, 1]].tolist()) == [0, 0, 1]


def test_load_digit_speech_on_the_installed_packages():
    try:
        data = load_digit_speech("test", images="sklearn-digits", sources=("tuxpaint", "asterisk"))
    except (ValueError, FileNotFoundError) as e:
        pytest.skip(f"speech packages not installed: {e}")
    assert data.speech.shape[1:] == (40, 101) and len(data.speech) == len(data.clips) == len(
        data.speech_labels
    )
    assert not data.synthetic.any() and set(data.speech_labels) <= set(range(10))
    paired = data.with_pairs(0.5, seed=0)
    assert np.all(paired.image_labels[paired.pairs[:, 0]] == paired.speech_labels[paired.pairs[:, 1]])
    train = load_digit_speech("train", images="sklearn-digits", sources=("tuxpaint", "asterisk"))
    assert not {c.speaker for c in train.clips} & {c.speaker for c in data.clips}  # speakers never shared
    with pytest.raises(ValueError, match="opencv-digits"):
        load_digit_speech("test", images="mnist")


def test_stamp_pictures_with_their_spoken_names(tmp_path):
    import soundfile as sf
    from PIL import Image

    from trustvis.data.crossmodal import stamp_speech

    birds = tmp_path / "animals" / "birds"
    birds.mkdir(parents=True)
    for name in ("rosella", "owl", "mute", "sea_urchin"):
        Image.new("RGBA", (8, 8)).save(birds / f"{name}.png")
    tone = (0.2 * np.sin(np.arange(4000) / 3)).astype(np.float32)
    clips = ("rosella_desc_fr.ogg", "rosella_desc_ru.ogg", "rosella.ogg", "rosella_en_GB.ogg", "owl_desc_ca.ogg",
             "lonely_desc_fr.ogg", "sea_urchin.ogg")  # fmt: skip
    for clip in clips:
        sf.write(str(birds / clip), tone, 16000, format="OGG")
    found = stamp_speech(tmp_path)
    # a picture without a clip (mute) and clips without a picture (lonely) are left out
    assert [s.picture.name for s in found] == ["owl.png", "rosella.png", "sea_urchin.png"]
    assert found[1].category == "animals"
    assert [lang for lang, _ in found[1].clips] == ["en", "en_GB", "fr", "ru"]
    assert [lang for lang, _ in found[2].clips] == ["en"]
    assert stamp_speech(tmp_path / "nowhere") == []


def test_the_installed_stamps_have_spoken_names():
    from trustvis.data.crossmodal import stamp_speech

    found = stamp_speech()
    if not found:
        pytest.skip("tuxpaint-stamps-default not installed")
    assert len(found) > 500 and sum(len(s.clips) for s in found) > 4000
