"""``torchvision.transforms``: the image transforms, with torchvision's names, signatures,
defaults and printed forms, on PIL images, NumPy images ``(H, W[, C])`` and Tensors
``(..., C, H, W)``.

Random transforms draw from :func:`wally.data.generator` (wally's global generator, so
``wally.manual_seed`` makes them repeat; inside a DataLoader its per-epoch generator). The
draws are torchvision's in kind and order, but not torch's random numbers: a seeded run repeats
on wally, not across wally and torch.

>>> transform = Compose([RandomResizedCrop(24), RandomHorizontalFlip(), ToTensor(),
...                      Normalize((0.5,), (0.5,))])
"""

from wally.data.transforms import (
    Compose,
    InterpolationMode,
    Lambda,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    Resize,
    ToTensor,
)
from wally.vision.transforms import functional
from wally.vision.transforms._color import (
    ColorJitter,
    ConvertImageDtype,
    Grayscale,
    PILToTensor,
)
from wally.vision.transforms._geometry import (
    CenterCrop,
    RandomResizedCrop,
    RandomRotation,
    RandomVerticalFlip,
)
from wally.vision.transforms._misc import Pad, RandomApply, RandomGrayscale, ToPILImage

__all__ = ["Compose", "ToTensor", "PILToTensor", "ConvertImageDtype", "Normalize", "Resize",
           "CenterCrop", "RandomCrop", "RandomResizedCrop", "RandomHorizontalFlip",
           "RandomVerticalFlip", "RandomRotation", "ColorJitter", "Grayscale", "Lambda",
           "Pad", "RandomGrayscale", "RandomApply", "ToPILImage", "InterpolationMode",
           "functional"]
