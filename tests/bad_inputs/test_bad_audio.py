"""Bad-input corpus, speech clips (issue 25): a corrupt, empty, zero-length, silent or missing clip is named in
one line and skipped; the good clips beside it are kept; when none can be read the error says so."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from trustvis.data.audio import AudioReadError, read_audio
from trustvis.data.speech import Clip, load_features


def _good(path):
    sf.write(str(path), (0.3 * np.sin(np.arange(8000) / 5)).astype(np.float32), 16000)
    return path


@pytest.fixture
def bad(tmp_path):
    files = {
        "corrupt": tmp_path / "corrupt.wav",
        "empty": tmp_path / "empty.ogg",
        "no_samples": tmp_path / "no_samples.wav",
        "silent": tmp_path / "silent.wav",
        "missing": tmp_path / "missing.wav",
        "text": tmp_path / "notes.ogg",
    }
    files["corrupt"].write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(200)))
    files["empty"].write_bytes(b"")
    sf.write(str(files["no_samples"]), np.zeros(0, np.float32), 16000)
    sf.write(str(files["silent"]), np.zeros(4000, np.float32), 16000)
    files["text"].write_text("not audio at all")
    return files


@pytest.mark.parametrize(("kind", "needle"), [("corrupt", "not a readable audio file"), ("empty", "not a readable"),
                                              ("no_samples", "no samples"), ("silent", "silent"),
                                              ("missing", "not a readable"), ("text", "not a readable")])  # fmt: skip
def test_a_bad_clip_is_named_in_one_line(bad, kind, needle):
    with pytest.raises(AudioReadError) as e:
        read_audio(bad[kind])
    msg = str(e.value)
    assert "\n" not in msg and str(bad[kind]) in msg and needle in msg


def test_bad_clips_are_skipped_and_the_good_ones_kept(bad, tmp_path, caplog):
    good = [_good(tmp_path / f"good{i}.wav") for i in range(2)]
    clips = [Clip(p, 1, "s/a", "en", "tuxpaint", False) for p in [good[0], *bad.values(), good[1]]]
    with caplog.at_level(logging.WARNING):
        feats, kept, skipped = load_features(clips)
    assert feats.shape[0] == 2 and [c.path for c in kept] == good
    assert sorted(p for p, _ in skipped) == sorted(bad.values())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert all(any(str(p) in w for w in warnings) for p in bad.values())


def test_no_readable_clip_is_an_error(bad):
    with pytest.raises(AudioReadError, match="none of the 6 clips"):
        load_features([Clip(p, 1, "s/a", "en", "tuxpaint", False) for p in bad.values()])
