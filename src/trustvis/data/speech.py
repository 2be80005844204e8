"""Spoken digits 0–9 from packages that install with apt: real recordings, and synthetic voices marked as such.

Real speech (never mixed up with synthetic: every :class:`Clip` carries ``synthetic``):

- Debian ``tuxpaint-stamps-default`` (GPL-2), ``/usr/share/tuxpaint/stamps/symbols/math/``: ``{d}.ogg`` (English)
  and ``{d}_{lang}.ogg`` — the digit's name spoken in about 22 languages, one recording per language and digit.
  The speaker of each language is taken to be one person (``tuxpaint/<lang>``); the ``{d}_desc_{lang}.ogg``
  descriptions are left out.
- Debian ``asterisk-core-sounds-{en,es,fr,it,ru}-wav`` (CC-BY-SA-3.0), ``/usr/share/asterisk/sounds/<lang>_<REGION>_
  <f|m>_<Name>/digits/{d}.wav``: one professional voice per package, 8 kHz telephone audio. The speaker is the
  person (``asterisk/Allison`` speaks both the English and the Spanish set).

Synthetic speech, generated once into the cache (``$TRUSTVIS_HOME/speech/synthetic/<engine>/<voice>/{d}.wav``):

- ``espeak-ng`` (formant synthesis; GPL-3): English voices x voice variants (:data:`ESPEAK_VOICES`);
- ``flite`` (CMU Flite; BSD-like): its built-in English voices (:data:`FLITE_VOICES`).

Splits are by speaker (:func:`speaker_split`): no voice is heard in two splits, and a held-out voice speaks a
language some training voice speaks (the real speakers of Tux Paint differ by language, so a language that only Tux
Paint speaks is a training language).
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trustvis.data.audio import AudioReadError, clip_features
from trustvis.data.sources import apt_root

log = logging.getLogger(__name__)

TUXPAINT_MATH = "usr/share/tuxpaint/stamps/symbols/math"
ASTERISK_SOUNDS = "usr/share/asterisk/sounds"
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: espeak-ng English voices x variants (``voice+variant``): 5 accents x 4 voices = 20 synthetic speakers
ESPEAK_VOICES = tuple(f"{v}{var}" for v in ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029")
                      for var in ("", "+f2", "+m3", "+f4"))  # fmt: skip
#: flite's built-in voices (``flite -lv``)
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
SOURCES = ("tuxpaint", "asterisk", "espeak-ng", "flite")
_TUX = re.compile(r"^(\d)(?:_([a-z]{2,3}(?:_[A-Za-z]{2})?))?\.ogg$")
_ASTERISK_VOICE = re.compile(r"^([a-z]{2})_[A-Z]{2}_[fm]_(\w+)$")


@dataclass(frozen=True)
class Clip:
    """One spoken digit."""

    path: Path
    digit: int
    speaker: str  # "<source>/<voice>": the unit of the speaker-disjoint splits
    language: str
    source: str  # tuxpaint | asterisk | espeak-ng | flite
    synthetic: bool


def tuxpaint_digits(root: str | Path | None = None) -> list[Clip]:
    """The Tux Paint digit names (real speech), ``root`` = the ``symbols/math`` folder (default: the apt one)."""
    folder = Path(root) if root else apt_root() / TUXPAINT_MATH
    if not folder.is_dir():
        return []
    clips = []
    for p in sorted(folder.iterdir()):
        m = _TUX.match(p.name)
        if m and p.is_file():
            lang = m.group(2) or "en"
            clips.append(Clip(p, int(m.group(1)), f"tuxpaint/{lang}", lang, "tuxpaint", False))
    return clips


def asterisk_digits(root: str | Path | None = None) -> list[Clip]:
    """The Asterisk prompt digits (real speech) of every installed voice, ``root`` = the ``sounds`` folder."""
    folder = Path(root) if root else apt_root() / ASTERISK_SOUNDS
    if not folder.is_dir():
        return []
    clips = []
    for voice in sorted(d for d in folder.iterdir() if d.is_dir()):
        m = _ASTERISK_VOICE.match(voice.name)
        if not m or voice.is_symlink():
            continue
        for d in range(10):
            p = voice / "digits" / f"{d}.wav"
            if p.is_file():
                clips.append(Clip(p, d, f"asterisk/{m.group(2)}", m.group(1), "asterisk", False))
    return clips


def synthetic_digits(cache: str | Path, engines: Iterable[str] = ("espeak-ng", "flite")) -> list[Clip]:
    """The synthetic English digits of ``engines`` that are installed, generated into ``cache`` on first use
    (one WAV per voice and digit, written to a temporary name, then renamed)."""
    clips = []
    for engine in engines:
        exe = shutil.which(engine)
        if exe is None:
            log.info(
                "%s is not installed: no synthetic %s voices (sudo apt-get install %s)",
                engine,
                engine,
                engine,
            )
            continue
        for voice in ESPEAK_VOICES if engine == "espeak-ng" else FLITE_VOICES:
            for d, word in enumerate(DIGIT_WORDS):
                out = Path(cache) / "speech" / "synthetic" / engine / voice.replace("+", "_") / f"{d}.wav"
                if not out.is_file():
                    out.parent.mkdir(parents=True, exist_ok=True)
                    tmp = out.with_name(f".{out.name}.tmp.wav")
                    cmd = ([exe, "-v", voice, "-w", str(tmp), word] if engine == "espeak-ng"
                           else [exe, "-voice", voice, "-t", word, "-o", str(tmp)])  # fmt: skip
                    done = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
                    if done.returncode != 0 or not tmp.is_file():
                        log.warning(
                            "%s voice %s failed (%s); skipped", engine, voice, done.stderr.decode()[:200]
                        )
                        tmp.unlink(missing_ok=True)
                        break
                    tmp.replace(out)
                clips.append(Clip(out, d, f"{engine}/{voice}", "en", engine, True))
    return clips


def spoken_digits(sources: Sequence[str] = SOURCES, languages: Sequence[str] | None = None,
                  cache: str | Path | None = None) -> list[Clip]:  # fmt: skip
    """Every spoken digit of ``sources`` (real ones first), optionally only in ``languages``.

    Raises:
        ValueError: an unknown source name (the message lists the valid ones).
    """
    bad = [s for s in sources if s not in SOURCES]
    if bad:
        raise ValueError(f"Unknown speech source(s) {bad}; choose from {list(SOURCES)}")
    clips: list[Clip] = []
    if "tuxpaint" in sources:
        clips += tuxpaint_digits()
    if "asterisk" in sources:
        clips += asterisk_digits()
    engines = [s for s in sources if s in ("espeak-ng", "flite")]
    if engines:
        from trustvis.data.cache import home

        clips += synthetic_digits(cache or home(), engines)
    if languages is not None:
        clips = [c for c in clips if c.language in set(languages)]
    return clips


def speaker_split(clips: Sequence[Clip], fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0,
                  names: Sequence[str] = ("train", "val", "test")) -> dict[str, list[Clip]]:  # fmt: skip
    """Clips cut into ``names`` by speaker; no speaker is in two splits.

    The speakers, shuffled by ``seed`` (those speaking several languages first), are dealt one by one: a speaker
    speaking a language no speaker of the first split (training) speaks yet goes there, so that a held-out voice
    always speaks a language heard in training; any other goes to the split whose share of speakers is furthest
    below its fraction. Real and synthetic speakers are dealt separately, so each split holds both kinds when there
    are enough speakers. (A language spoken by one speaker only is therefore a training language.)

    Raises:
        ValueError: fractions that do not match the names or do not sum to 1.
    """
    if len(fractions) != len(names) or not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(
            f"fractions {list(fractions)} must be >= 0, one per split {list(names)}, summing to 1"
        )
    rng = np.random.default_rng(seed)
    out: dict[str, list[Clip]] = {n: [] for n in names}
    for synthetic in (False, True):
        langs: dict[str, set[str]] = {}
        for c in clips:
            if c.synthetic == synthetic:
                langs.setdefault(c.speaker, set()).add(c.language)
        speakers = sorted(langs)
        speakers = [speakers[i] for i in rng.permutation(len(speakers))]
        speakers.sort(key=lambda s: -len(langs[s]))  # stable: the shuffled order within each count
        counts, heard = np.zeros(len(names)), set()
        assign = {}
        for k, spk in enumerate(speakers):
            i = 0 if not langs[spk] <= heard else int(np.argmax(np.asarray(fractions) * (k + 1) - counts))
            if i == 0:
                heard |= langs[spk]
            assign[spk] = names[i]
            counts[i] += 1
        for c in clips:
            if c.synthetic == synthetic:
                out[assign[c.speaker]].append(c)
    return out


def load_features(
    clips: Sequence[Clip], seconds: float = 1.0
) -> tuple[np.ndarray, list[Clip], list[tuple[Path, str]]]:
    """Log-mel features (N, n_mels, frames) of the readable ``clips``, those clips, and the skipped ones as
    ``(path, reason)`` — a corrupt or empty clip is named in a warning and left out, never fatal."""
    feats, kept, skipped = [], [], []
    for c in clips:
        try:
            feats.append(clip_features(c.path, seconds))
            kept.append(c)
        except AudioReadError as e:
            log.warning("skipped %s", e)
            skipped.append((c.path, str(e)))
    if not feats:
        raise AudioReadError(
            f"none of the {len(clips)} clips could be read (first: {skipped[0][1] if skipped else '-'})"
        )
    return np.stack(feats), kept, skipped
