"""The registry of every weight file macs uses: what it is, where it comes from, how it is pinned."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX40 = re.compile(r"[0-9a-f]{40}")

Status = Literal["ok", "missing", "corrupt", "unpinned"]


@dataclass(frozen=True)
class WeightSpec:
    """One registry entry: a single file (``kind="file"``) or a Hugging Face repository (``kind="hf-repo"``).

    For an ``hf-repo`` entry ``filename`` names the file whose presence in the snapshot marks it complete (a
    diffusers ``model_index.json`` also names the component folders that must be there), ``urls`` only points
    people at the repository, and ``allow_patterns`` / ``ignore_patterns`` pick the files; the download goes
    through ``huggingface_hub``.
    """

    name: str
    filename: str
    urls: tuple[str, ...]
    sha256: str | None
    size: int | None
    licence: str
    what: str
    used_by: str
    kind: Literal["file", "hf-repo"] = "file"
    repo_id: str | None = None
    revision: str | None = None
    ignore_patterns: tuple[str, ...] = ()
    allow_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not self.urls:
            problems.append("no url")
        if not self.filename or "/" in self.filename or self.filename.startswith("."):
            problems.append(f"bad filename {self.filename!r}")
        if self.sha256 is not None and not _HEX64.fullmatch(self.sha256):
            problems.append(f"sha256 {self.sha256!r} is not 64 lowercase hex digits")
        if self.kind == "hf-repo" and not (self.repo_id and self.revision and _HEX40.fullmatch(self.revision)):
            problems.append("an hf-repo entry needs a repo_id and a 40-hex commit revision")
        if self.kind not in ("file", "hf-repo"):
            problems.append(f"unknown kind {self.kind!r}")
        if problems:
            raise ValueError(f"weights {self.name!r}: " + "; ".join(problems))

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def pinned(self) -> bool:
        """A published sha256, or a hub commit that pins every file's hash."""
        return self.sha256 is not None or self.kind == "hf-repo"


# Hash provenance (see each entry): never invent one; without a published sha256 use None (trust on first use).
WEIGHTS: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in (
        WeightSpec(
            name="inception-2015-12-05",
            filename="inception-2015-12-05.pt",
            urls=("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",),
            # URL: cleanfid/downloads_helper.py; sha256: crowsonkb/k-diffusion k_diffusion/evaluation.py (same URL).
            sha256="f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4",
            size=None,
            licence="Apache-2.0 network (TensorFlow Models); TorchScript wrapper under the NVIDIA Source Code License",
            what="TorchScript Inception-v3 (TF 2015-12-05 weights) from StyleGAN2-ADA, as clean-fid loads it",
            used_by="FID / KID (clean-fid)",
        ),
        WeightSpec(
            name="clip-vit-b-32-openai",
            filename="ViT-B-32.pt",
            urls=("https://openaipublic.azureedge.net/clip/models/"
                  "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",),
            # URL: open_clip/pretrained.py (_VITB32 "openai"); OpenAI puts the file's sha256 in the path.
            sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
            size=None,
            licence="MIT (openai/CLIP)",
            what="OpenAI CLIP ViT-B/32 (TorchScript archive), read with open_clip.load_openai_model",
            used_by="CLIP image/text similarity (open_clip)",
        ),
        WeightSpec(
            name="clip-vit-l-14-336-openai",
            filename="ViT-L-14-336px.pt",
            urls=("https://openaipublic.azureedge.net/clip/models/"
                  "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",),
            # URL: open_clip/pretrained.py (_VITL14_336 "openai"); OpenAI puts the file's sha256 in the path.
            sha256="3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
            size=None,
            licence="MIT (openai/CLIP)",
            what="OpenAI CLIP ViT-L/14 at 336 px (TorchScript archive), read with open_clip.load_openai_model",
            used_by="CMMD (opt-in: score --metrics cmmd)",
        ),
        WeightSpec(
            name="dinov2-vit-l-14",
            filename="config.json",
            urls=("https://huggingface.co/facebook/dinov2-large/tree/47b73eefe95e8d44ec3623f8890bd894b6ea2d6c",),
            # revision: the main commit in public models--facebook--dinov2-large/snapshots/ paths; the LFS blob
            # of model.safetensors is named by its sha256, which the snapshot check verifies.
            sha256=None,
            size=None,
            licence="Apache-2.0 (facebookresearch/dinov2)",
            what="DINOv2 ViT-L/14 (transformers layout: config.json, model.safetensors)",
            used_by="FD-DINOv2, precision/recall on DINOv2 (opt-in: score --metrics fd_dinov2,prdc_dinov2)",
            kind="hf-repo",
            repo_id="facebook/dinov2-large",
            revision="47b73eefe95e8d44ec3623f8890bd894b6ea2d6c",
            allow_patterns=("config.json", "model.safetensors"),
        ),
        WeightSpec(
            name="imagebind-huge",
            filename="imagebind_huge.pth",
            urls=("https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth",),
            # URL: facebookresearch/ImageBind imagebind/models/imagebind_model.py (imagebind_huge); no published
            # checksum: trusted on first use. Every modality's weights; the baseline reads the audio keys only.
            sha256=None,
            size=None,
            licence="CC-BY-NC-SA 4.0 (ImageBind LICENSE; README: CC-BY-NC 4.0): non-commercial",
            what="ImageBind huge (all six modality towers, torch state dict)",
            used_by="imagebind-unclip baseline (the audio tower)",
        ),
        WeightSpec(
            name="sd-2-1-unclip",
            filename="model_index.json",
            urls=("https://huggingface.co/stabilityai/stable-diffusion-2-1-unclip/tree/"
                  "e99f66a92bdcd1b0fb0d4b6a9b81b3b37d8bea44",),
            # revision: the main commit seen in public models--stabilityai--stable-diffusion-2-1-unclip/snapshots/
            # paths. The root sd21-unclip-*.ckpt files are the same weights in the original layout: skipped.
            sha256=None,
            size=None,
            licence="CreativeML Open RAIL++-M (stabilityai/stable-diffusion-2-1-unclip)",
            what="Stable unCLIP 2.1 (diffusers layout, OpenCLIP ViT-H image embeddings); hub-commit pinned",
            used_by="imagebind-unclip baseline (StableUnCLIPImg2ImgPipeline)",
            kind="hf-repo",
            repo_id="stabilityai/stable-diffusion-2-1-unclip",
            revision="e99f66a92bdcd1b0fb0d4b6a9b81b3b37d8bea44",
            ignore_patterns=("*.msgpack", "*.h5", "*.onnx", "*.ckpt"),
        ),
        WeightSpec(
            name="wav2clip",
            filename="Wav2CLIP.pt",
            urls=("https://github.com/descriptinc/lyrebird-wav2clip/releases/download/v0.1.0-alpha/Wav2CLIP.pt",),
            # URL: wav2clip/__init__.py MODEL_URL; no published checksum: trusted on first use.
            sha256=None,
            size=None,
            licence="MIT (descriptinc/lyrebird-wav2clip)",
            what="Wav2CLIP audio encoder distilled from CLIP ViT-B/32",
            used_by="audio/image similarity (wav2clip)",
        ),
        WeightSpec(
            name="clap-630k-audioset-best",
            filename="630k-audioset-best.pt",
            urls=("https://huggingface.co/lukewys/laion_clap/resolve/main/630k-audioset-best.pt",),
            # URL: LAION-AI/CLAP src/laion_clap/hook.py; sha256 is the file's Hugging Face LFS oid, size its length.
            sha256="8053c9775516af2f4902e1e8281e356cc1bf7a85e8b761908170767b77c3f037",
            size=1_863_587_645,
            licence="Apache-2.0 (laion_clap package metadata)",
            what="LAION-CLAP HTSAT-tiny + RoBERTa, non-fusion, trained on LAION-Audio-630K + AudioSet",
            used_by="CLAP audio/text similarity (laion_clap)",
        ),
        WeightSpec(
            name="stable-diffusion-v1-4",
            filename="model_index.json",
            urls=("https://huggingface.co/CompVis/stable-diffusion-v1-4/tree/"
                  "133a221b8aa7292a167afc5127cb63fb5005638b",),
            # revision: the main commit seen in many public models--CompVis--stable-diffusion-v1-4/snapshots/ paths.
            sha256=None,
            size=None,
            licence="CreativeML OpenRAIL-M",
            what="Stable Diffusion v1.4 (diffusers layout); per-file hashes pinned by the hub commit",
            used_by="macs-model stage 2 (Stable Diffusion adapter)",
            kind="hf-repo",
            repo_id="CompVis/stable-diffusion-v1-4",
            revision="133a221b8aa7292a167afc5127cb63fb5005638b",
            ignore_patterns=("*.msgpack", "*.h5", "*.onnx", "*.ckpt"),
        ),
        WeightSpec(
            name="roberta-base-tokenizer",
            filename="vocab.json",
            urls=("https://huggingface.co/FacebookAI/roberta-base/tree/e2da8e2f811d1448a5b465c236feacd80ffbac7b",),
            # revision: the main commit in public models--FacebookAI--roberta-base/snapshots/ paths. Only the
            # tokenizer files: CLAP's text weights come from its own checkpoint.
            sha256=None,
            size=None,
            licence="MIT (FacebookAI/roberta-base)",
            what="RoBERTa-base BPE tokenizer (vocab.json, merges.txt) for CLAP's text branch",
            used_by="macs-model stage 1 (CLAP text prompts)",
            kind="hf-repo",
            repo_id="FacebookAI/roberta-base",
            revision="e2da8e2f811d1448a5b465c236feacd80ffbac7b",
            allow_patterns=("vocab.json", "merges.txt", "tokenizer.json", "config.json"),
        ),
        WeightSpec(
            name="beats-as2m-cpt2",
            filename="BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt",
            urls=("https://valle.blob.core.windows.net/share/BEATs/BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt"
                  "?sv=2020-08-04&st=2023-03-01T07%3A51%3A05Z&se=2033-03-02T07%3A51%3A00Z&sr=c&sp=rl"
                  "&sig=QJXmSJG9DbMKf48UDIU1MfzIro8HQOf3sqlNXiflY1I%3D",),
            # URL: the microsoft/unilm beats README and guyyariv/AudioToken README (a read-only blob link valid to
            # 2033); no checksum is published: trusted on first use.
            sha256=None,
            size=None,
            licence="MIT (microsoft/unilm BEATs)",
            what="BEATs iter3+ pre-trained and fine-tuned on AudioSet-2M (cpt2), the checkpoint AudioToken loads",
            used_by="AudioToken baselines (macs_model.encoders.beats)",
        ),
        WeightSpec(
            name="audiotoken-embedder",
            filename="embedder_learned_embeds.bin",
            urls=("https://github.com/guyyariv/AudioToken/raw/cf75d3012dc16b58c7492dac9de430a011300971/"
                  "output/embedder_learned_embeds.bin",),
            # URL: the file at the commit that added it (README "Pre-Trained Embedder"); no sha256 is published, the
            # commit fixes its git blob id, which macs_model.baselines.audiotoken checks (RELEASE_BLOB).
            sha256=None,
            size=None,
            licence="MIT (guyyariv/AudioToken)",
            what="AudioToken's learned embedder (FGA) for SD v1.4, trained on VGGSound",
            used_by="AudioToken baselines (macs_model.baselines.audiotoken)",
        ),
    )
}


@dataclass(frozen=True)
class VerifyResult:
    """The state of one entry on disk; ``expected`` is the pinned or locally recorded hash, if any."""

    name: str
    status: Status
    path: Path
    expected: str | None
    actual: str | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "unpinned")


@dataclass(frozen=True)
class WeightRow:
    """One line of ``macs-bench weights list``; ``size`` is the file's when present, else the registry's."""

    name: str
    file: str
    size: int | None
    present: bool
    pinned: bool
    used_by: str
    pin: str = ""  # how: "sha256", "hub <commit[:12]>" or "on first use"


def pin_kind(spec: WeightSpec) -> str:
    """How an entry is pinned, as ``weights list`` shows it."""
    if spec.sha256 is not None:
        return "sha256"
    if spec.kind == "hf-repo":
        return f"hub {str(spec.revision)[:12]}"
    return "on first use"
