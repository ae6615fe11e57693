"""wally.vision's datasets, utils and models against torchvision (where it imports): the same
files give the same items, attributes and printed forms; grids and saved images are equal; the
models have torchvision's state_dict and, with its weights, its outputs."""

from __future__ import annotations

import gzip
import io
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from wally.data import DataLoader, DatasetNotFoundError
from wally.vision import datasets, models, transforms, utils

Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed: pip install pillow")

from _torchvision import import_torchvision  # noqa: E402

FASHION_SYSTEM = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def tv():
    return import_torchvision()


def idx_bytes(array):
    code = {np.uint8: 0x08}[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(">u1").tobytes()


def write_mnist(folder, split, n, seed=0, gz=False):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        name = f"{split}-{kind}-ubyte"
        data = idx_bytes(array)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


def write_cifar(folder, n_per_batch=3):
    folder.mkdir(parents=True, exist_ok=True)
    everything = {}
    for k, name in enumerate([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]):
        rng = np.random.default_rng(k)
        labels = rng.integers(0, 10, size=n_per_batch, dtype=np.uint8)
        planes = rng.integers(0, 256, size=(n_per_batch, 3, 32, 32), dtype=np.uint8)
        records = np.concatenate([labels[:, None], planes.reshape(n_per_batch, -1)], axis=1)
        (folder / name).write_bytes(records.tobytes())
        everything[name] = planes.transpose(0, 2, 3, 1), labels
    return everything


# ----- datasets ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST"])
@pytest.mark.parametrize("train", [True, False])
def test_mnist_like_equals_torchvision(tv, tmp_path, name, train):
    """torchvision's layout (``<root>/<Name>/raw``): the same data, targets, items and repr."""
    write_mnist(tmp_path / name / "raw", "train" if train else "t10k", n=7, seed=train)
    write_mnist(tmp_path / name / "raw", "t10k" if train else "train", n=2, seed=5)
    trans = transforms.Compose([transforms.Resize(14), transforms.ToTensor()])
    theirs_trans = tv.transforms.Compose([tv.transforms.Resize(14), tv.transforms.ToTensor()])
    ours = getattr(datasets, name)(root=str(tmp_path), train=train)
    theirs = getattr(tv.datasets, name)(root=str(tmp_path), train=train)
    assert isinstance(ours.data, wally.Tensor) and ours.data.dtype == wally.uint8
    assert isinstance(ours.targets, wally.Tensor) and ours.targets.dtype == wally.int64
    np.testing.assert_array_equal(ours.data.numpy(), theirs.data.numpy())
    np.testing.assert_array_equal(ours.targets.numpy(), theirs.targets.numpy())
    assert ours.classes == theirs.classes and ours.class_to_idx == theirs.class_to_idx
    assert len(ours) == len(theirs) == 7
    for index in (0, 6):
        (image, label), (their_image, their_label) = ours[index], theirs[index]
        assert isinstance(image, Image.Image) and image.mode == their_image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), np.asarray(their_image))
        assert label == their_label and type(label) is int
    assert repr(ours) == repr(theirs)
    def shift(label):
        return label + 1

    ours = getattr(datasets, name)(str(tmp_path), train, trans, shift)
    theirs = getattr(tv.datasets, name)(str(tmp_path), train, theirs_trans, shift)
    assert repr(ours) == repr(theirs)
    image, label = ours[3]
    np.testing.assert_array_equal(image.numpy(), theirs[3][0].numpy())
    assert label == theirs[3][1]


def test_mnist_found_in_wally_layout_and_gzipped(tmp_path):
    images, labels = write_mnist(tmp_path / "MNIST", "train", n=5, gz=True)
    dataset = datasets.MNIST(tmp_path)
    np.testing.assert_array_equal(dataset.data.numpy(), images)
    np.testing.assert_array_equal(dataset.targets.numpy(), labels.astype(np.int64))
    assert str(dataset.root) == str(tmp_path) and dataset.raw_folder.endswith("MNIST/raw")


def test_loader_fast_path_equals_items(tmp_path):
    """A DataLoader slices the stored array for deterministic transforms; the batches equal
    those collated from PIL items one by one."""
    write_mnist(tmp_path / "FashionMNIST" / "raw", "train", n=11)
    trans = transforms.Compose([transforms.Resize(20), transforms.CenterCrop(16),
                                transforms.ToTensor(), transforms.Normalize((0.5,), (0.25,))])
    dataset = datasets.FashionMNIST(str(tmp_path), transform=trans)
    assert dataset._get_batch(np.arange(3)) is not None  # the fast path is taken
    batches = list(DataLoader(dataset, batch_size=4))
    assert [tuple(x.shape) for x, _ in batches] == [(4, 1, 16, 16)] * 2 + [(3, 1, 16, 16)]
    for k, (x, y) in enumerate(batches):
        items = [dataset[i] for i in range(4 * k, min(4 * k + 4, 11))]
        np.testing.assert_array_equal(x.numpy(), np.stack([im.numpy() for im, _ in items]))
        assert y.tolist() == [label for _, label in items]
    # a random transform or a target transform: item by item
    dataset.transform = transforms.Compose([transforms.RandomCrop(24), transforms.ToTensor()])
    assert dataset._get_batch(np.arange(3)) is None
    assert next(iter(DataLoader(dataset, batch_size=4)))[0].shape == (4, 1, 24, 24)


def test_cifar10_layouts_and_attributes(tmp_path):
    files = write_cifar(tmp_path / "cifar-10-batches-bin")
    train = datasets.CIFAR10(str(tmp_path))
    test = datasets.CIFAR10(str(tmp_path), train=False, transform=transforms.ToTensor())
    assert isinstance(train.data, np.ndarray) and train.data.shape == (15, 32, 32, 3)
    assert isinstance(train.targets, list) and all(type(t) is int for t in train.targets)
    expected_images, expected_labels = files["test_batch.bin"]
    np.testing.assert_array_equal(test.data, expected_images)
    assert test.targets == expected_labels.tolist()
    image, label = train[4]
    assert isinstance(image, Image.Image) and image.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(image), files["data_batch_2.bin"][0][1])
    assert label == int(files["data_batch_2.bin"][1][1])
    tensor, _ = test[0]
    np.testing.assert_allclose(tensor.numpy(), expected_images[0].transpose(2, 0, 1) / 255,
                               rtol=1e-6)
    assert repr(test) == (f"Dataset CIFAR10\n    Number of datapoints: 3\n    Root location: "
                          f"{tmp_path}\n    Split: Test\n    StandardTransform\n"
                          f"Transform: ToTensor()")
    assert train.class_to_idx["cat"] == 3
    # wally.data's layout, <root>/CIFAR10/cifar-10-batches-bin, is found too
    other = tmp_path / "other"
    write_cifar(other / "CIFAR10" / "cifar-10-batches-bin", n_per_batch=1)
    assert len(datasets.CIFAR10(str(other))) == 5


def test_cifar10_refuses_the_pickled_version(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x04pickle")
    with pytest.raises(DatasetNotFoundError, match=r"(?s)cifar-10-batches-py holds the Python "
                                                   r"\(pickle\) version, which wally never loads"):
        datasets.CIFAR10(str(tmp_path))


def test_dataset_arguments_are_checked(tmp_path):
    with pytest.raises(TypeError, match="MNIST: root must be a folder"):
        datasets.MNIST(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        datasets.MNIST()  # type: ignore[call-arg]  # root is required, as in torchvision
    with pytest.raises(DatasetNotFoundError, match="(?s)MNIST: dataset files not found"):
        datasets.MNIST(str(tmp_path))


def test_fashion_mnist_missing_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.FashionMNIST, "system_folders", [tmp_path / "nowhere"])
    with pytest.raises(DatasetNotFoundError,
                       match="(?s)apt-get install dataset-fashion-mnist"):
        datasets.FashionMNIST(str(tmp_path))


@pytest.mark.skipif(not (FASHION_SYSTEM / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist package is not installed "
                           "(apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_from_the_debian_package(tmp_path):
    """An empty root (and download=True, as d2l passes it) reads the package's real files."""
    test = datasets.FashionMNIST(str(tmp_path), train=False, download=True,
                                 transform=transforms.ToTensor())
    assert tuple(test.data.shape) == (10000, 28, 28)
    assert np.bincount(test.targets.numpy()).tolist() == [1000] * 10
    assert not (tmp_path / "FashionMNIST").exists()  # nothing was downloaded or written
    image, label = test[0]
    assert image.shape == (1, 28, 28) and label == 9 and test.classes[label] == "Ankle boot"
    ours = wally.data.FashionMNIST(root=tmp_path, train=False)
    np.testing.assert_array_equal(ours.data, test.data.numpy())


# ----- utils -------------------------------------------------------------------------------------
@settings(max_examples=30)
@given(st.integers(1, 7), st.sampled_from([1, 3]), st.integers(1, 5), st.integers(1, 4),
       st.integers(1, 9), st.integers(0, 3), st.booleans(),
       st.sampled_from([None, (0.2, 0.7)]), st.booleans(), st.sampled_from([0.0, 0.5]),
       st.integers(0, 2**16))
def test_make_grid_matches_torchvision(tv, n, channels, height, width, nrow, padding,
                                       normalize, value_range, scale_each, pad_value, seed):
    import torch

    array = np.random.default_rng(seed).random((n, channels, height, width)).astype(np.float32)
    kwargs = dict(nrow=nrow, padding=padding, normalize=normalize, value_range=value_range,
                  scale_each=scale_each, pad_value=pad_value)
    ours = utils.make_grid(wally.from_numpy(array.copy()), **kwargs)
    theirs = tv.utils.make_grid(torch.from_numpy(array.copy()), **kwargs)
    assert ours.dtype == wally.float32
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7)
    # a list of (C, H, W) tensors, and one image alone
    listed = utils.make_grid([wally.from_numpy(a.copy()) for a in array], **kwargs)
    np.testing.assert_array_equal(listed.numpy(), ours.numpy())
    single = utils.make_grid(wally.from_numpy(array[0].copy()), **kwargs)
    np.testing.assert_allclose(single.numpy(), tv.utils.make_grid(
        torch.from_numpy(array[0].copy()), **kwargs).numpy(), rtol=1e-6, atol=1e-7)


def test_save_image_matches_torchvision(tv, tmp_path):
    import torch

    array = np.random.default_rng(0).random((5, 3, 6, 4)).astype(np.float32) * 1.2 - 0.1
    utils.save_image(wally.from_numpy(array.copy()), tmp_path / "ours.png", nrow=3)
    tv.utils.save_image(torch.from_numpy(array.copy()), tmp_path / "theirs.png", nrow=3)
    ours, theirs = Image.open(tmp_path / "ours.png"), Image.open(tmp_path / "theirs.png")
    assert ours.format == "PNG" and ours.size == theirs.size == (3 * 6 + 2, 2 * 8 + 2)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers
    buffer = io.BytesIO()
    utils.save_image(wally.from_numpy(array[:1].copy()), buffer, format="PNG")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(buffer.getvalue()))),
                                  np.asarray(Image.open(tmp_path / "ours.png"))[2:8, 2:6])


def test_utils_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"make_grid: expected a tensor of 2, 3 or 4 dimensions, "
                                         r"got shape \(1, 1, 1, 2, 2\)"):
        utils.make_grid(wally.zeros(1, 1, 1, 2, 2))
    with pytest.raises(TypeError, match="make_grid: value_range has to be a tuple"):
        utils.make_grid(wally.zeros(2, 3, 2, 2), normalize=True, value_range=3)
    with pytest.raises(TypeError, match="make_grid: expected a Tensor or a list of Tensors, got "
                                        "ndarray"):
        utils.make_grid(np.zeros((2, 3, 2, 2)))
    with pytest.raises(ValueError, match="save_image: cannot tell the image format of"):
        utils.save_image(wally.zeros(3, 2, 2), tmp_path / "picture.unknown")


# ----- models ------------------------------------------------------------------------------------
def state_of(torch_model):
    return {key: value.detach().numpy() for key, value in torch_model.state_dict().items()}


@pytest.mark.parametrize("name, size", [("resnet18", 64), ("resnet50", 64), ("alexnet", 64),
                                        ("resnext50_32x4d", 32), ("vgg11_bn", 32),
                                        ("densenet121", 32), ("googlenet", 64)])
def test_models_match_torchvision(tv, name, size):
    """The same printed form, state_dict keys and shapes; with torchvision's weights loaded,
    the same outputs (eval mode) and the same gradient of the input (train mode)."""
    import torch

    torch.manual_seed(0)
    kwargs = {"init_weights": True} if name == "googlenet" else {}  # no FutureWarning
    theirs = getattr(tv.models, name)(num_classes=10, **kwargs)
    ours = getattr(models, name)(num_classes=10, **kwargs)
    assert repr(ours) == repr(theirs)
    their_state = state_of(theirs)
    our_state = ours.state_dict()
    assert list(our_state) == list(their_state)
    assert {k: tuple(v.shape) for k, v in our_state.items()} == {
        k: v.shape for k, v in their_state.items()}
    # non-trivial batch-norm statistics, so that eval mode tests them; for GoogLeNet weights
    # that keep activations at unit scale (its N(0, 0.01²) makes the output its last bias)
    with torch.no_grad():
        for module in theirs.modules():
            if name == "googlenet" and isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
                torch.nn.init.kaiming_normal_(module.weight)
        for module in theirs.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    ours.load_state_dict({k: wally.from_numpy(v.copy()) for k, v in state_of(theirs).items()})
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    ours.eval()
    theirs.eval()
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours(wally.from_numpy(x)).detach().numpy(), expected, rtol=1e-3,
                               atol=1e-4)
    if name in ("resnet18", "alexnet", "googlenet"):
        # train mode (batch statistics) and the backward pass, in float64: batch norm over 2
        # images of a few pixels is ill-conditioned, so float32 rounding would swamp the test
        theirs.double().train()
        ours.to(wally.float64)
        ours.load_state_dict({k: wally.from_numpy(v.copy()) for k, v in state_of(theirs).items()})
        ours.train()
        for module in theirs.modules():  # dropout draws differ between the frameworks
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        for module in ours.modules():
            if isinstance(module, wally.nn.Dropout):
                module.p = 0.0
        x64 = x.astype(np.float64)
        ours_x, theirs_x = wally.from_numpy(x64.copy()), torch.from_numpy(x64.copy())
        ours_x.requires_grad_(True)
        theirs_x.requires_grad_(True)
        ours_out, theirs_out = ours(ours_x), theirs(theirs_x)
        if name == "googlenet":  # training mode: the logits and both auxiliary heads
            assert type(ours_out).__name__ == "GoogLeNetOutputs" and len(ours_out) == 3
        else:
            ours_out, theirs_out = (ours_out,), (theirs_out,)
        for ours_part, theirs_part in zip(ours_out, theirs_out):
            np.testing.assert_allclose(ours_part.detach().numpy(),
                                       theirs_part.detach().numpy(), rtol=1e-8, atol=1e-9)
        sum((part ** 2).sum() for part in ours_out).backward()
        sum((part ** 2).sum() for part in theirs_out).backward()
        scale = np.abs(theirs_x.grad.numpy()).max()
        np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-7,
                                   atol=1e-9 * scale)


def test_model_initialisation_follows_torchvision():
    model = models.resnet18(zero_init_residual=True)
    weight = model.layer1[0].conv1.weight.detach().numpy()  # He normal, fan out = 64 * 3 * 3
    assert abs(weight.std() - np.sqrt(2 / (64 * 9))) < 0.05 * np.sqrt(2 / (64 * 9))
    assert abs(weight.mean()) < 0.005
    assert np.all(model.layer2[1].bn2.weight.detach().numpy() == 0)
    assert np.all(model.bn1.weight.detach().numpy() == 1)
    assert np.all(model.bn1.bias.detach().numpy() == 0)
    assert model.conv1.bias is None and model.fc.bias is not None
    vgg = models.vgg11(num_classes=3)
    linear = vgg.classifier[6].weight.detach().numpy()
    assert abs(linear.std() - 0.01) < 0.002 and np.all(vgg.classifier[6].bias.detach().numpy() == 0)
    assert np.all(vgg.features[0].bias.detach().numpy() == 0)


def test_models_refuse_weights():
    for builder, name in ((models.resnet18, "resnet18"), (models.vgg16, "vgg16"),
                          (models.alexnet, "alexnet"), (models.densenet121, "densenet121"),
                          (models.googlenet, "googlenet")):
        with pytest.raises(ValueError, match=rf"{name}: weights='IMAGENET1K_V1' cannot be "
                                             r"loaded: wally fetches no pretrained weights"):
            builder(weights="IMAGENET1K_V1")
    with pytest.raises(ValueError, match="resnet34: weights='pretrained=True' cannot be loaded"):
        models.resnet34(pretrained=True)
    assert models.resnet18(weights=None, progress=False, pretrained=False).fc.out_features == 1000
    with pytest.raises(ValueError, match="BasicBlock: only supports groups=1 and base_width=64"):
        models.resnet18(groups=2)
    with pytest.raises(ValueError, match="ResNet: replace_stride_with_dilation should be None or "
                                         "a 3-element list"):
        models.resnet50(replace_stride_with_dilation=[True])
    with pytest.raises(ValueError, match="GoogLeNet: blocks length should be 3 instead of 1"):
        models.googlenet(blocks=[models.googlenet])


# ----- ImageFolder -------------------------------------------------------------------------------
def write_image_folder(root):
    rng = np.random.default_rng(0)
    layout = {"dog": ["b.png", "a.PNG", "deep/c.bmp", "notes.txt"], "cat": ["z.jpg", "y.ppm"],
              "bird": ["x.tiff"]}
    for name, files in layout.items():
        for file in files:
            path = root / name / file
            path.parent.mkdir(parents=True, exist_ok=True)
            if file.endswith(".txt"):
                path.write_text("not an image")
                continue
            mode = "L" if file.startswith("y") else "RGB"
            shape = (5, 6) if mode == "L" else (5, 6, 3)
            Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8)).save(path)


def test_image_folder_matches_torchvision(tv, tmp_path):
    write_image_folder(tmp_path)
    ours = datasets.ImageFolder(str(tmp_path), transform=transforms.ToTensor())
    theirs = tv.datasets.ImageFolder(str(tmp_path), transform=tv.transforms.ToTensor())
    assert ours.classes == theirs.classes == ["bird", "cat", "dog"]
    assert ours.class_to_idx == theirs.class_to_idx
    assert ours.samples == theirs.samples and ours.imgs == theirs.imgs
    assert ours.targets == theirs.targets and len(ours) == len(theirs) == 6
    for index in range(len(ours)):
        (image, label), (their_image, their_label) = ours[index], theirs[index]
        np.testing.assert_array_equal(image.numpy(), their_image.numpy())
        assert label == their_label
    assert repr(ours) == repr(theirs)
    raw = datasets.ImageFolder(str(tmp_path), is_valid_file=lambda p: p.endswith("b.png"),
                               allow_empty=True)
    assert [Path(p).name for p, _ in raw.samples] == ["b.png"]
    assert raw[0][0].mode == "RGB"


def test_image_folder_refusals(tmp_path):
    with pytest.raises(FileNotFoundError, match="ImageFolder: couldn't find any class folder in"):
        datasets.ImageFolder(str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="ImageFolder: found no valid file for the "
                                                "classes empty. Supported extensions are: .jpg"):
        datasets.ImageFolder(str(tmp_path))
    (tmp_path / "empty" / "fake.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n")
    dataset = datasets.ImageFolder(str(tmp_path))
    with pytest.raises(wally.data.DatasetFormatError, match="fake.png"):
        dataset[0]  # PostScript named .png: never handed to Ghostscript


def test_summary_of_torchvision_resnet18():
    """torchvision's weights table says ResNet-18 has 11,689,512 parameters and 1.814 G
    operations (multiply-adds of its convolutions and linear layer) at 224×224."""
    text = str(wally.summary(models.resnet18(), input_size=(1, 3, 224, 224)))
    assert "Parameters: 11,689,512" in text
    macs = re.search(r"MACs: [\d,]+ \(Conv2d ([\d,]+), BatchNorm2d [\d,]+, Linear ([\d,]+)\)",
                     text)
    assert macs is not None, text
    conv, linear = (int(group.replace(",", "")) for group in macs.groups())
    assert round((conv + linear) / 1e9, 3) == 1.814


def test_vision_dataset_base_matches_torchvision(tv):
    def squares(base):
        class Squares(base):
            def __getitem__(self, index):
                return self.transforms(index, index * index)

            def __len__(self):
                return 4

            def extra_repr(self):
                return "Kind: squares\nSplit: all"
        return Squares

    def shift(y):
        return y + 1

    def swap(x, y):
        return y, x

    ours_class, theirs_class = squares(datasets.VisionDataset), squares(tv.datasets.VisionDataset)
    for kwargs in ({"target_transform": shift}, {"transform": shift, "target_transform": shift},
                   {"transforms": swap}, {}):
        for root in (None, "~/data"):
            ours, theirs = ours_class(root, **kwargs), theirs_class(root, **kwargs)
            if kwargs:
                assert ours[3] == theirs[3]
            assert repr(ours) == repr(theirs)
            assert ours.root == theirs.root
    with pytest.raises(ValueError, match="Squares: only transforms or transform/target_transform"):
        ours_class(None, transforms=swap, transform=shift)
    with pytest.raises(NotImplementedError, match="VisionDataset defines no __getitem__"):
        datasets.VisionDataset("x")[0]
