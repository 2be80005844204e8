"""Reading speech clips and turning them into log-mel features (the audio half of the ``multimodal`` task).

Decoding is libsndfile's, through ``soundfile`` (WAV, FLAC, Ogg Vorbis, Opus; the wheel bundles the library,
so it installs offline); resampling is SciPy's polyphase filter. torchaudio is not used: no wheel matches the
project's torch. The log-mel spectrogram is ``torch.stft`` through a mel filterbank written here::

    file ──soundfile──► float32 (samples, channels) ──mean──► mono ──resample_poly──► 16 kHz
        ──trim_silence (frames within top_db of the loudest)──► fix_length (centre crop / zero pad to `seconds`)
        ──stft (25 ms Hann window, 10 ms hop, n_fft 512)──► |X|² ──mel filterbank (40 bands, HTK scale)──► log(· + 1e-6)
        = (n_mels, frames)

Choices: the HTK mel scale ``2595 log10(1 + f/700)`` with triangles of unit peak (no area normalisation); silence
is trimmed before the fixed-length window so that a short digit lands in the middle of it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

SAMPLE_RATE = 16_000
N_MELS = 40
N_FFT = 512
WIN = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms at 16 kHz


#: the file suffixes read as audio (what libsndfile decodes)
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus"})


def frames_for(seconds: float) -> int:
    """The log-mel frames of a clip of ``seconds`` (10 ms hop, centred frames: 1 s gives 101)."""
    return int(round(seconds * SAMPLE_RATE)) // HOP + 1


class AudioReadError(ValueError):
    """A clip that cannot be decoded, or holds no sound; the message names the file."""


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 samples of ``path`` at ``sample_rate`` Hz.

    Raises:
        AudioReadError: a missing, unreadable, corrupt or empty file (the message names it).
    """
    import soundfile as sf
    from scipy.signal import resample_poly

    path = Path(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise AudioReadError(f"{path}: not a readable audio file ({reason})") from None
    if data.size == 0:
        raise AudioReadError(f"{path}: the clip holds no samples")
    x = data.mean(axis=1)
    if not np.all(np.isfinite(x)):
        raise AudioReadError(f"{path}: the clip holds NaN or infinite samples")
    if sr != sample_rate:
        g = math.gcd(int(sr), int(sample_rate))
        x = resample_poly(x, sample_rate // g, int(sr) // g).astype(np.float32)
    if not np.any(x):
        raise AudioReadError(f"{path}: the clip is silent (every sample is zero)")
    return x.astype(np.float32, copy=False)


def trim_silence(x: np.ndarray, top_db: float = 40.0, frame: int = WIN, hop: int = HOP) -> np.ndarray:
    """``x`` from the first to the last frame whose RMS is within ``top_db`` dB of the loudest frame."""
    if len(x) < frame:
        return x
    n = 1 + (len(x) - frame) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop][:n]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-10) / max(rms.max(), 1e-10))
    loud = np.flatnonzero(db > -top_db)
    if not loud.size:
        return x
    return x[loud[0] * hop : loud[-1] * hop + frame]


def fix_length(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` centre-cropped or zero-padded (evenly on both sides) to exactly ``n`` samples."""
    if len(x) >= n:
        start = (len(x) - n) // 2
        return x[start : start + n]
    left = (n - len(x)) // 2
    return np.pad(x, (left, n - len(x) - left))


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE, n_mels: int = N_MELS, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:  # fmt: skip
    """Triangular filters (n_mels, n_fft // 2 + 1), equally spaced on the HTK mel scale from ``fmin`` to ``fmax``
    (default Nyquist), each with peak 1 at its centre frequency."""
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= {sample_rate / 2}, got fmin={fmin}, fmax={fmax}")
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))  # (n_mels + 2,)
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lo, centre, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (centre - lo)
    down = (hi - freqs[None]) / (hi - centre)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


def log_mel(x: np.ndarray, sample_rate: int = SAMPLE_RATE, n_mels: int = N_MELS) -> np.ndarray:
    """Log-mel spectrogram (n_mels, frames) of mono samples ``x``: 25 ms Hann windows every 10 ms (at 16 kHz)."""
    scale = sample_rate / SAMPLE_RATE
    win, hop = round(WIN * scale), round(HOP * scale)
    n_fft = max(N_FFT, 1 << (win - 1).bit_length())
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    spec = torch.stft(t, n_fft, hop_length=hop, win_length=win, window=torch.hann_window(win), center=True,
                      return_complex=True).abs().pow(2)  # (n_fft//2+1, frames)  # fmt: skip
    fb = torch.from_numpy(mel_filterbank(n_fft, sample_rate, n_mels))
    return torch.log(fb @ spec + 1e-6).numpy().astype(np.float32)


def clip_features(
    path: str | Path, seconds: float = 1.0, n_mels: int = N_MELS, top_db: float = 40.0
) -> np.ndarray:
    """The log-mel features (n_mels, frames) of one clip: read, trim silence, fix to ``seconds``, log-mel.

    Raises:
        AudioReadError: the clip cannot be read (see :func:`read_audio`).
    """
    x = fix_length(trim_silence(read_audio(path), top_db), int(round(seconds * SAMPLE_RATE)))
    return log_mel(x, SAMPLE_RATE, n_mels)
