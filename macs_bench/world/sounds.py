"""The world's twelve sound classes and how a clip's sources are rendered and mixed.

The classes share frequency bands on purpose, so that a source is told apart by its pitch, its timbre or its
temporal pattern rather than by where its energy sits:

- harmonic tones in 100-3000 Hz: ``Hum`` (f0 100-150 Hz, every harmonic, steady), ``Buzz`` (same pitch, odd
  harmonics, 30 Hz roughness), ``Drone`` (f0 200-300 Hz, mellow), ``Horn`` (f0 200-300 Hz, bright, pulsed);
- tones in 600-3000 Hz: ``Whistle`` (vibrato), ``Siren`` (slow glide 600-1400 Hz), ``Beeps`` (on/off at 4-6 Hz),
  ``Chirps`` (80 ms upward sweeps);
- ``Bell`` (inharmonic partials struck twice a second), ``Clicks`` (a damped click train), ``Rain`` (steady
  noise, 1-4 kHz) and ``Wind`` (noise, 300-1500 Hz, slow swells).

A clip holds 1-5 sources; each is scaled to unit RMS, given a gain of 0 to -20 dB and sounds over a part of the
clip (40-100 % of it, 20 ms fades), so sources overlap in time only partly and quiet ones can be masked.
Everything is a function of the random generator passed in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SAMPLE_RATE = 16000
CLASSES = ("Hum", "Buzz", "Drone", "Horn", "Whistle", "Siren", "Beeps", "Chirps", "Bell", "Clicks", "Rain", "Wind")
MAX_SOURCES = 5
GAIN_SPREAD_DB = 20.0
MIN_ACTIVE = 0.4
PEAK = 0.8


def _harmonics(f0: float, t: np.ndarray, weights: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    out = np.zeros_like(t)
    for k, w in enumerate(weights, 1):
        if w and f0 * k < 7000:
            out += w * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
    return out


def _band_noise(samples: int, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    freqs = np.fft.rfftfreq(samples, 1 / SAMPLE_RATE)
    spectrum[(freqs < low) | (freqs > high)] = 0
    return np.fft.irfft(spectrum, samples)


def _gate(t: np.ndarray, rate: float, duty: float, rng: np.random.Generator) -> np.ndarray:
    """A 0/1 on-off pattern at ``rate`` Hz with ``duty`` on, smoothed over 5 ms."""
    phase = (t * rate + rng.uniform(0, 1)) % 1.0
    gate = (phase < duty).astype(float)
    kernel = np.ones(80) / 80
    return np.convolve(gate, kernel, mode="same")


def _strikes(samples: int, period: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    env = np.zeros(samples)
    step = int(period * SAMPLE_RATE)
    tail = np.exp(-np.arange(samples) / (decay * SAMPLE_RATE))
    for start in range(int(rng.integers(0, step)), samples, step):
        env[start:] += tail[:samples - start]
    return env


def sound(name: str, samples: int, rng: np.random.Generator) -> np.ndarray:
    """One source of class ``name``, ``samples`` long, at an arbitrary level (scaled by :func:`render_sources`)."""
    t = np.arange(samples) / SAMPLE_RATE
    if name == "Hum":
        return _harmonics(rng.uniform(100, 150), t, [1 / k for k in range(1, 21)], rng)
    if name == "Buzz":
        tone = _harmonics(rng.uniform(100, 150), t, [1 / k if k % 2 else 0 for k in range(1, 21)], rng)
        return tone * (1 + 0.8 * np.sin(2 * np.pi * rng.uniform(25, 35) * t))
    if name == "Drone":
        return _harmonics(rng.uniform(200, 300), t, [1 / k ** 2 for k in range(1, 9)], rng)
    if name == "Horn":
        return _harmonics(rng.uniform(200, 300), t, [1.0] * 10, rng) * _gate(t, rng.uniform(1.2, 1.8), 0.65, rng)
    if name == "Whistle":
        f0 = rng.uniform(1000, 2000)
        return np.sin(2 * np.pi * f0 * t + (f0 * 0.03 / 5) * np.sin(2 * np.pi * 5 * t))
    if name == "Siren":
        rate = rng.uniform(0.5, 1.0)
        freq = 1000 + 400 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
        return np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE)
    if name == "Beeps":
        return np.sin(2 * np.pi * rng.uniform(1000, 2000) * t) * _gate(t, rng.uniform(4, 6), 0.5, rng)
    if name == "Chirps":
        out, period, length = np.zeros(samples), int(rng.uniform(0.25, 0.4) * SAMPLE_RATE), int(0.08 * SAMPLE_RATE)
        tt = np.arange(length) / SAMPLE_RATE
        chirp = np.sin(2 * np.pi * (1000 * tt + 0.5 * 25000 * tt ** 2)) * np.hanning(length)
        for start in range(int(rng.integers(0, period)), samples - length, period):
            out[start:start + length] += chirp
        return out
    if name == "Bell":
        f = rng.uniform(400, 800)
        partials = sum(w * np.sin(2 * np.pi * f * r * t) for r, w in ((1, 1.0), (2.76, 0.6), (5.4, 0.4)))
        return partials * _strikes(samples, 0.5, 0.12, rng)
    if name == "Clicks":
        n = 160
        click = np.exp(-np.arange(n) / 20.0) * np.sin(2 * np.pi * 900 * np.arange(n) / SAMPLE_RATE)
        out, period = np.zeros(samples), int(SAMPLE_RATE / rng.uniform(6, 12))
        for start in range(int(rng.integers(0, period)), samples - n, period):
            out[start:start + n] += click
        return out
    if name == "Rain":
        return _band_noise(samples, 1000, 4000, rng)
    if name == "Wind":
        swell = 1 + 0.7 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t + rng.uniform(0, 2 * np.pi))
        return _band_noise(samples, 300, 1500, rng) * swell
    raise ValueError(f"unknown world sound class {name!r}")


def _window(samples: int, rng: np.random.Generator, full: bool = False) -> np.ndarray:
    """Where a source sounds: a random 40-100 % stretch of the clip with 20 ms fades (or all of it)."""
    if full:
        return np.ones(samples)
    length = int(rng.uniform(MIN_ACTIVE, 1.0) * samples)
    start = int(rng.integers(0, samples - length + 1))
    env = np.zeros(samples)
    env[start:start + length] = 1.0
    fade = min(int(0.02 * SAMPLE_RATE), length // 2)
    if fade:
        env[start:start + fade] = np.linspace(0, 1, fade)
        env[start + length - fade:start + length] = np.linspace(1, 0, fade)
    return env


def render_sources(names: Sequence[str], samples: int, rng: np.random.Generator) -> np.ndarray:
    """The clip's sources as they sound in its mixture, ``[len(names), samples]``: unit RMS, gains of 0 to -20 dB,
    partial time windows, all scaled by the one factor that brings the mixture's peak to 0.8."""
    sources = []
    for name in names:
        wave = sound(name, samples, rng)
        wave = wave / max(1e-9, float(np.sqrt(np.mean(wave ** 2))))
        gain = 10 ** (-rng.uniform(0, GAIN_SPREAD_DB) / 20)
        sources.append(gain * wave * _window(samples, rng, full=len(names) == 1))
    stack = np.stack(sources)
    peak = float(np.max(np.abs(stack.sum(0))))
    return stack * (PEAK / max(peak, 1e-9))


def quantise(audio: np.ndarray) -> np.ndarray:
    """What a 16-bit WAV of ``audio`` reads back as (soundfile's float: the integers over 32768)."""
    return np.round(np.clip(audio, -1, 1) * 32767) / 32768
