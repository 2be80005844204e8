"""Spoken digits and their features (issue 25's data): the audio reader, the log-mel front end, the clip
catalogues of the apt packages (on tiny folders made here, and on the installed packages when present), the
synthetic voices and the speaker-disjoint split."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from trustvis.data import audio as A
from trustvis.data import speech as S


def _tone(path, freq=1000.0, seconds=0.5, sr=16000, channels=1, pad=0.0, fmt=None):
    t = np.arange(int(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    if pad:
        x = np.concatenate([np.zeros(int(pad * sr)), x, np.zeros(int(pad * sr))])
    data = np.stack([x] * channels, 1) if channels > 1 else x
    sf.write(str(path), data.astype(np.float32), sr, format=fmt)
    return path


def test_read_audio_resamples_to_16k_and_mixes_to_mono(tmp_path):
    x = A.read_audio(_tone(tmp_path / "a.wav", sr=8000, seconds=0.5, channels=2))
    assert x.dtype == np.float32 and x.ndim == 1
    assert len(x) == 8000  # 0.5 s at 16 kHz
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spectrum) * 16000 / len(x) - 1000) < 5  # still a 1 kHz tone after resampling


def test_ogg_vorbis_reads(tmp_path):
    x = A.read_audio(_tone(tmp_path / "a.ogg", sr=44100, fmt="OGG"))
    assert abs(len(x) - 8000) <= 1


def test_mel_filterbank_triangles():
    fb = A.mel_filterbank(512, 16000, 40)
    assert fb.shape == (40, 257)
    assert fb.max() <= 1.0 and fb.max(1).min() > 0.4  # no empty band (the lowest are a few bins wide)
    centres = A.mel_to_hz(np.linspace(A.hz_to_mel(0), A.hz_to_mel(8000), 42))[1:-1]
    bins = np.linspace(0, 8000, 257)
    inside = (bins > centres[0]) & (bins < centres[-1])
    np.testing.assert_allclose(fb[:, inside].sum(0), 1.0, atol=1e-5)  # neighbours overlap to exactly 1
    assert np.all(np.diff(np.argmax(fb, 1)) >= 0)  # centres rise with the band index
    with pytest.raises(ValueError, match="fmax"):
        A.mel_filterbank(512, 16000, 40, fmax=9000)


def test_log_mel_puts_a_tone_in_its_band(tmp_path):
    feats = A.log_mel(A.read_audio(_tone(tmp_path / "a.wav", freq=2000.0)))
    assert feats.shape == (40, 51)  # 0.5 s: 1 + 8000 / 160 frames
    centres = A.mel_to_hz(np.linspace(A.hz_to_mel(0), A.hz_to_mel(8000), 42))[1:-1]
    assert abs(int(np.argmax(feats[:, 25])) - int(np.argmin(np.abs(centres - 2000)))) <= 1


def test_trim_and_fix_length(tmp_path):
    x = A.read_audio(_tone(tmp_path / "a.wav", seconds=0.3, pad=0.5))
    trimmed = A.trim_silence(x)
    assert abs(len(trimmed) - 0.3 * 16000) < 800  # the tone, give or take a frame on each side
    assert len(A.fix_length(trimmed, 16000)) == 16000 and len(A.fix_length(x, 1000)) == 1000
    y = A.fix_length(np.ones(4, np.float32), 8)
    np.testing.assert_array_equal(y, [0, 0, 1, 1, 1, 1, 0, 0])
    assert A.clip_features(tmp_path / "a.wav", seconds=1.0).shape == (40, 101)


def test_tuxpaint_names_are_parsed(tmp_path):
    for name in ("3.ogg", "3_de.ogg", "3_zh_tw.ogg", "3_en_GB.ogg", "3_desc_fr.ogg", "3.txt", "x_de.ogg"):
        _tone(tmp_path / name, fmt="OGG") if name.endswith(".ogg") else (tmp_path / name).write_text("Three.")
    clips = S.tuxpaint_digits(tmp_path)
    assert sorted(c.speaker for c in clips) == [
        "tuxpaint/de",
        "tuxpaint/en",
        "tuxpaint/en_GB",
        "tuxpaint/zh_tw",
    ]
    assert all(c.digit == 3 and not c.synthetic and c.source == "tuxpaint" for c in clips)


def test_asterisk_voices_are_speakers_not_languages(tmp_path):
    for voice in ("en_US_f_Allison", "es_MX_f_Allison", "fr_CA_f_June"):
        (tmp_path / voice / "digits").mkdir(parents=True)
        for d in (0, 7):
            _tone(tmp_path / voice / "digits" / f"{d}.wav", sr=8000)
    (tmp_path / "en").mkdir()  # a plain language folder is not a voice
    clips = S.asterisk_digits(tmp_path)
    assert len(clips) == 6
    assert {c.speaker for c in clips} == {"asterisk/Allison", "asterisk/June"}
    assert {c.language for c in clips if c.speaker == "asterisk/Allison"} == {"en", "es"}


def _clips(n_real=10, n_synth=10):
    return [S.Clip(f"r{i}_{d}.wav", d, f"real/{i}", "en", "tuxpaint", False) for i in range(n_real) for d in range(3)] + \
        [S.Clip(f"s{i}_{d}.wav", d, f"espeak-ng/{i}", "en", "espeak-ng", True) for i in range(n_synth) for d in range(3)]  # fmt: skip


def test_speaker_split_is_speaker_disjoint_and_keeps_every_clip():
    clips = _clips()
    sp = S.speaker_split(clips, seed=1)
    speakers = {k: {c.speaker for c in v} for k, v in sp.items()}
    assert not (speakers["train"] & speakers["val"]) and not (speakers["train"] & speakers["test"])
    assert not (speakers["val"] & speakers["test"])
    assert sorted(map(str, (c.path for v in sp.values() for c in v))) == sorted(str(c.path) for c in clips)
    assert [len(speakers[k]) for k in ("train", "val", "test")] == [12, 4, 4]
    for v in sp.values():  # real and synthetic speakers in every split
        assert any(c.synthetic for c in v) and not all(c.synthetic for c in v)
    assert S.speaker_split(clips, seed=1) == sp and S.speaker_split(clips, seed=2) != sp
    with pytest.raises(ValueError, match="summing to 1"):
        S.speaker_split(clips, fractions=(0.5, 0.2, 0.2))


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs espeak-ng (scripts/setup.sh installs it)"
)
def test_espeak_voices_are_generated_once_and_marked_synthetic(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "ESPEAK_VOICES", ("en-us+f2",))
    clips = S.synthetic_digits(tmp_path, engines=("espeak-ng",))
    assert [c.digit for c in clips] == list(range(10))
    assert all(c.synthetic and c.speaker == "espeak-ng/en-us+f2" and c.path.is_file() for c in clips)
    stamp = clips[0].path.stat().st_mtime_ns
    assert S.synthetic_digits(tmp_path, engines=("espeak-ng",))[0].path.stat().st_mtime_ns == stamp  # cached
    feats, kept, skipped = S.load_features(clips)
    assert feats.shape == (10, 40, 101) and not skipped


def test_the_installed_packages_give_real_speakers():
    clips = S.tuxpaint_digits() + S.asterisk_digits()
    if not clips:
        pytest.skip(
            "tuxpaint-stamps-default / asterisk-core-sounds-*-wav not installed (scripts/setup.sh installs them)"
        )
    assert {c.digit for c in clips} == set(range(10)) and not any(c.synthetic for c in clips)
    per_speaker = {}
    for c in clips:
        per_speaker.setdefault(c.speaker, set()).add(c.digit)
    full = [s for s, d in per_speaker.items() if d == set(range(10))]
    assert (
        len(full) >= len(per_speaker) - 6
    )  # most voices say every digit (Tux Paint lacks a few languages' zero)


def test_unknown_speech_source():
    with pytest.raises(ValueError, match="espeak-ng"):
        S.spoken_digits(sources=("tuxpaint", "festival"))
