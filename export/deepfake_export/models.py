"""The served networks, layer for layer (documented in ``docs/models.md``).

These classes are the source of truth for the architectures. Parameter names
follow the libraries trained checkpoints usually come from (efficientnet-pytorch
for the visual backbone, torchvision's ResNet naming for the audio backbone,
facenet-pytorch for MTCNN), so their state dicts load without renaming.

Every detector returns its raw two-class logits; :class:`WithProbabilities`
adds the softmax for export so Triton serves ``[real_prob, fake_prob]``.
"""

from __future__ import annotations

import torch
from torch import nn

# Image inputs arrive normalized with the ImageNet statistics (docs/models.md, visual detector).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VisualDetector(nn.Module):
    """The visual detector: EfficientNet-B4 (1792-d pooled) -> 512 -> 2, on face crops."""

    def __init__(self) -> None:
        super().__init__()
        # Imported here so that the other networks do not need the package.
        from efficientnet_pytorch import EfficientNet

        # from_name builds the architecture without downloading anything;
        # ImageNet weights, when wanted, come in through a checkpoint.
        self.backbone = EfficientNet.from_name("efficientnet-b4")
        # The swish with a custom autograd function does not export to ONNX.
        self.backbone.set_swish(memory_efficient=False)
        self.backbone._fc = nn.Identity()  # unused: we pool ourselves
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Dropout(0.3),
            nn.Linear(1792, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(0.2),
            nn.Linear(512, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, 2]`` of normalized face crops ``[N, 3, 224, 224]``."""
        features = self.pool(self.backbone.extract_features(x)).flatten(1)
        return self.head(features)


class FeatureScaler(nn.Module):
    """A StandardScaler as buffers: ``(x - mean) / scale``.

    Such a scaler is usually shipped as a scikit-learn pickle; unpickling runs code, so the
    scaler's two vectors live in the checkpoint and the ONNX graph instead.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("scale", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardize raw features with the checkpoint's ``mean`` and ``scale``."""
        return (x - self.mean) / self.scale


class ForensicClassifier(nn.Module):
    """The forensic classifier: scaler -> MLP 12 -> 64 -> 32 -> 2 with BatchNorm/ReLU/Dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.scaler = FeatureScaler(12)
        self.mlp = nn.Sequential(
            nn.Linear(12, 64),
            nn.BatchNorm1d(64),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(64, 32),
            nn.BatchNorm1d(32),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(32, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, 2]`` of raw (unscaled) forensic features ``[N, 12]``."""
        return self.mlp(self.scaler(x))


class BasicBlock(nn.Module):
    """ResNet's basic block, with torchvision's parameter names."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Two 3x3 convolutions plus the (downsampled, where the shape changes) input."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18Features(nn.Module):
    """ResNet18 up to the pooled 512-d features (torchvision names, no fc).

    Written out because torchvision does not import next to the CPU torch
    build used here; the layout is torchvision's ``resnet18`` exactly.
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled ``[N, 512]`` features of ``[N, C, H, W]`` input."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


class AudioDetector(nn.Module):
    """The audio detector: ResNet18 (1 input channel) -> 512 -> 128 -> 2, on a log-mel spectrogram."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = ResNet18Features(in_channels=1)
        self.head = nn.Sequential(
            nn.Dropout(0.3),
            nn.Linear(512, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, 2]`` of log-mel windows ``[N, 1, 80, 251]``."""
        return self.head(self.backbone(x))


def _conv3d_block(cin: int, cout: int, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> nn.Sequential:
    # "Same" padding: the architecture fixes kernels and strides only, and without
    # padding the 16-frame axis shrinks to nothing before the last conv
    # (16 -> 14 -> 12 -> 6 -> 4 -> 2 -> 0).
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(
        nn.Conv3d(cin, cout, kernel, stride, padding, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class TemporalAnalyzer(nn.Module):
    """The temporal analyzer: a 3D CNN over (batch, 16, 3, 224, 224) frames."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv3d_block(3, 64, (3, 7, 7), (1, 2, 2)),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            _conv3d_block(64, 128, (3, 3, 3), (1, 1, 1)),
            nn.MaxPool3d(2),
            _conv3d_block(128, 256, (3, 3, 3), (1, 1, 1)),
            nn.MaxPool3d(2),
            _conv3d_block(256, 512, (3, 3, 3), (1, 1, 1)),
            nn.AdaptiveAvgPool3d(1),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(512, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, 2]`` of normalized frames ``[N, 16, 3, 224, 224]``."""
        # (batch, frames, channels, H, W) -> (batch, channels, frames, H, W)
        return self.head(self.features(x.permute(0, 2, 1, 3, 4)))


class PNet(nn.Module):
    """MTCNN proposal network (facenet-pytorch's layout and parameter names)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Box offsets ``[N, 4, h, w]`` and face probabilities ``[N, 2, h, w]``, one per 12x12 cell."""
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """MTCNN refinement network (facenet-pytorch's layout and parameter names)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Box offsets ``[N, 4]`` and face probabilities ``[N, 2]`` of 24x24 candidates."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The weights were converted from Caffe, which flattens W before H.
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """MTCNN output network (facenet-pytorch's layout and parameter names)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Box offsets ``[N, 4]``, landmarks ``[N, 10]`` and face probabilities ``[N, 2]`` of 48x48 candidates."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


class WithProbabilities(nn.Module):
    """Export wrapper: ``(probs, logits)`` from a logits-producing detector."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(softmax probabilities, logits)``: the ``output`` and ``logits`` tensors Triton serves."""
        logits = self.detector(x)
        return torch.softmax(logits, dim=1), logits


#: Builders by the served name: the four detectors in the order of docs/models.md, then MTCNN's stages.
BUILDERS: dict[str, type[nn.Module]] = {
    "visual_detector": VisualDetector,
    "forensic_classifier": ForensicClassifier,
    "audio_detector": AudioDetector,
    "temporal_analyzer": TemporalAnalyzer,
    "pnet": PNet,
    "rnet": RNet,
    "onet": ONet,
}
