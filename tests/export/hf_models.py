"""Tiny Hugging Face image classifiers built from configs, saved as a hub checkout would be.

No hub is reachable here, so the pretrained path is tested with small models of
the three processor families the served detectors use (ViT, SigLIP, a ResNet
with ConvNeXt-style preprocessing), written with ``save_pretrained`` exactly
as a downloaded model is laid out.
"""

from __future__ import annotations

from pathlib import Path

import torch

#: A transformer small enough to build in a blink, at the 224x224 input every processor here ends at.
TINY_TRANSFORMER = {
    "image_size": 224,
    "patch_size": 32,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


def save_vit(folder: Path, labels: dict[int, str], seed: int = 0) -> Path:
    """A 2-layer ViT with ``ViTImageProcessor`` (224, bilinear, mean/std 0.5)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil

    config = ViTConfig(
        **TINY_TRANSFORMER,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    torch.manual_seed(seed)
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessorPil().save_pretrained(folder)
    return folder


def save_siglip(folder: Path, labels: dict[int, str], seed: int = 0) -> Path:
    """A 2-layer SigLIP vision tower with ``SiglipImageProcessor`` (224, bicubic, mean/std 0.5)."""
    from transformers import SiglipConfig, SiglipForImageClassification, SiglipImageProcessorPil

    config = SiglipConfig(
        vision_config=TINY_TRANSFORMER,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    torch.manual_seed(seed)
    SiglipForImageClassification(config).save_pretrained(folder)
    SiglipImageProcessorPil().save_pretrained(folder)
    return folder


def save_resnet(folder: Path, labels: dict[int, str], seed: int = 0) -> Path:
    """A small ResNet with microsoft/resnet-50's processor (shortest edge 224, crop_pct 0.875, bicubic, ImageNet)."""
    from transformers import ConvNextImageProcessorPil, ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(
        embedding_size=8,
        hidden_sizes=[8, 16],
        depths=[1, 1],
        layer_type="basic",
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    torch.manual_seed(seed)
    ResNetForImageClassification(config).save_pretrained(folder)
    ConvNextImageProcessorPil(
        size={"shortest_edge": 224},
        crop_pct=0.875,
        resample=3,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)
    return folder


BUILDERS = {"vit": save_vit, "siglip": save_siglip, "resnet": save_resnet}


# -- audio: raw-waveform classifiers ---------------------------------------------------

#: A 2-layer transformer over a small 7-layer conv feature encoder (the wav2vec2 stride of 320 samples).
TINY_AUDIO = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "conv_dim": (16,) * 7,
    "conv_stride": (5, 2, 2, 2, 2, 2, 2),
    "conv_kernel": (10, 3, 3, 3, 3, 2, 2),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "classifier_proj_size": 16,
}


def _save_audio(folder: Path, config_class, model_class, labels: dict[int, str], normalize: bool, seed: int) -> Path:
    from transformers import Wav2Vec2FeatureExtractor

    config = config_class(**TINY_AUDIO, id2label=labels, label2id={v: k for k, v in labels.items()})
    torch.manual_seed(seed)
    model_class(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=normalize, return_attention_mask=False
    ).save_pretrained(folder)
    return folder


def save_wav2vec2(folder: Path, labels: dict[int, str], seed: int = 0) -> Path:
    """A tiny ``Wav2Vec2ForSequenceClassification``; its extractor normalizes each window."""
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    return _save_audio(folder, Wav2Vec2Config, Wav2Vec2ForSequenceClassification, labels, True, seed)


def save_hubert(folder: Path, labels: dict[int, str], seed: int = 0) -> Path:
    """A tiny ``HubertForSequenceClassification``; its extractor normalizes each window."""
    from transformers import HubertConfig, HubertForSequenceClassification

    return _save_audio(folder, HubertConfig, HubertForSequenceClassification, labels, True, seed)


def save_wavlm(folder: Path, labels: dict[int, str], seed: int = 0) -> Path:
    """A tiny ``WavLMForSequenceClassification``; its extractor passes the samples as they are."""
    from transformers import WavLMConfig, WavLMForSequenceClassification

    return _save_audio(folder, WavLMConfig, WavLMForSequenceClassification, labels, False, seed)


AUDIO_BUILDERS = {"wav2vec2": save_wav2vec2, "hubert": save_hubert, "wavlm": save_wavlm}
