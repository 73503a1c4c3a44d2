"""The ffmpeg-python-built command lines give byte-for-byte the outputs of the hand-built lists they replaced
(restated here as the reference), and stay argument lists in which a '-' file name is a path."""

import os
import subprocess

import pytest

from macs_bench.media import ffmpeg

from media_helpers import make_av

GLOBALS = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]


def reference_clip(src, offset, duration, n_frames, wav, frames_dir):
    """The pre-ffmpeg-python command of extract_clip, as it was written by hand."""
    n = round(duration * 16000)
    audio = (f"[0:a:0]aresample=16000:async=1:first_pts=0,aformat=channel_layouts=mono,"
             f"apad=whole_len={n},atrim=end_sample={n}[a]")
    cmd = GLOBALS + ["-ss", f"{offset:.3f}", "-t", f"{duration:.3f}", "-i", str(src.resolve())]
    graph = audio if frames_dir is None else f"{audio};[0:v:0]setpts=PTS-0.5/TB,fps=1:start_time=0:round=up[v]"
    cmd += ["-filter_complex", graph, "-map", "[a]", "-c:a", "pcm_s16le", "-ar", "16000", "-ac", "1",
            str(wav.resolve())]
    if frames_dir is not None:
        cmd += ["-map", "[v]", "-frames:v", str(n_frames), "-q:v", "2", "-start_number", "0",
                str(frames_dir.resolve() / "%03d.jpg")]
    return cmd


def reference_audio(src, wav):
    return GLOBALS + ["-i", str(src.resolve()), "-map", "0:a:0", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le",
                      str(wav.resolve())]


def _outputs(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("offset,duration,frames", [(3.0, 10.0, True), (0.5, 2.25, False)])
def test_clip_outputs_identical_to_the_hand_built_command(tmp_path, long_video, offset, duration, frames):
    src = tmp_path / "-starts-with-dash.mp4"  # a YouTube id may begin with '-'
    os.symlink(long_video, src)
    ours, ref = tmp_path / "ours", tmp_path / "ref"
    for folder in (ours, ref):
        (folder / "frames").mkdir(parents=True)
    written = ffmpeg.extract_clip(src, offset, duration, 10, ours / "a.wav", ours / "frames" if frames else None)
    subprocess.run(reference_clip(src, offset, duration, 10, ref / "a.wav", ref / "frames" if frames else None),
                   check=True)
    got, want = _outputs(ours), _outputs(ref)
    assert got == want
    assert len(written) == (10 if frames else 0) and len(got) == (11 if frames else 1)


def test_late_audio_and_whole_track_identical(tmp_path):
    src = make_av(tmp_path / "late.mkv", 6, 3, audio_start=1.5)  # the async/first_pts path: silence first
    ours, ref = tmp_path / "ours", tmp_path / "ref"
    for folder in (ours, ref):
        (folder / "frames").mkdir(parents=True)
    ffmpeg.extract_clip(src, 0.0, 5.0, 5, ours / "a.wav", ours / "frames")
    subprocess.run(reference_clip(src, 0.0, 5.0, 5, ref / "a.wav", ref / "frames"), check=True)
    ffmpeg.extract_audio(src, ours / "whole.wav")
    subprocess.run(reference_audio(src, ref / "whole.wav"), check=True)
    assert _outputs(ours) == _outputs(ref)


def test_commands_are_argument_lists_with_absolute_paths(tmp_path):
    cmd = ffmpeg.clip_command(tmp_path / "-x.mp4", 1.0, 10.0, 10, tmp_path / "a.wav", tmp_path / "f")
    assert all(isinstance(arg, str) for arg in cmd)
    assert cmd[cmd.index("-i") + 1] == str(tmp_path / "-x.mp4")
    assert cmd[1:6] == GLOBALS[1:]
    assert ffmpeg.audio_command(tmp_path / "-x.mp4", tmp_path / "a.wav")[-1] == str(tmp_path / "a.wav")
