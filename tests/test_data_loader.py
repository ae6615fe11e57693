"""Datasets, samplers, collation and the DataLoader (wally.data)."""

from __future__ import annotations

import gc
import threading
import time
import traceback
from collections import namedtuple

import numpy as np
import pytest

import wally
from wally.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)
from wally.data import transforms as T


def loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "wally-DataLoader"]


def wait_for_no_loader_threads(timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while loader_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not loader_threads(), "the DataLoader's background thread did not stop"


@pytest.fixture(autouse=True)
def _no_thread_leaks():
    yield
    gc.collect()
    wait_for_no_loader_threads()


def arrays(loader):
    """Every batch of a loader as NumPy arrays (lists of fields)."""
    return [[field.numpy().copy() for field in batch] for batch in loader]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for batch_a, batch_b in zip(a, b):
        assert len(batch_a) == len(batch_b)
        for x, y in zip(batch_a, batch_b):
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)


def make_dataset(n=50):
    features = wally.from_numpy(np.arange(n * 6, dtype=np.float32).reshape(n, 2, 3))
    labels = wally.from_numpy(np.arange(n, dtype=np.int64) % 7)
    return TensorDataset(features, labels)


class ListDataset(Dataset):
    """Per-item dataset (no fast path) of (uint8 image, int label)."""

    def __init__(self, n=40, transform=None):
        rng = np.random.default_rng(123)
        self.images = rng.integers(0, 256, size=(n, 12, 12), dtype=np.uint8)
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, index


# ----- datasets ----------------------------------------------------------------------------------
def test_tensor_dataset_items_and_length():
    dataset = make_dataset(5)
    x, y = dataset[3]
    assert len(dataset) == 5
    np.testing.assert_array_equal(x.numpy(), np.arange(18, 24, dtype=np.float32).reshape(2, 3))
    assert y.item() == 3


def test_tensor_dataset_size_mismatch_names_sizes():
    with pytest.raises(ValueError, match=r"TensorDataset.*sizes 5, 4"):
        TensorDataset(wally.zeros(5, 2), wally.zeros(4))


def test_subset_and_concat():
    dataset = make_dataset(10)
    subset = Subset(dataset, [9, 2, 4])
    assert len(subset) == 3 and subset[0][1].item() == 9 % 7
    both = ConcatDataset([subset, dataset])
    assert len(both) == 13
    assert both[3][1].item() == dataset[0][1].item()
    assert both[-1][1].item() == dataset[9][1].item()
    with pytest.raises(IndexError):
        both[13]


def test_random_split_lengths_fractions_and_reproducibility():
    dataset = make_dataset(10)
    parts = random_split(dataset, [3, 7], generator=1)
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(parts[0].indices + parts[1].indices) == list(range(10))
    # Fractions: floor each, then the remainder one by one from the first subset.
    assert [len(p) for p in random_split(make_dataset(11), [0.5, 0.5], generator=0)] == [6, 5]
    again = random_split(dataset, [3, 7], generator=1)
    assert again[0].indices == parts[0].indices
    other = random_split(dataset, [3, 7], generator=2)
    assert other[0].indices + other[1].indices != parts[0].indices + parts[1].indices
    wally.manual_seed(5)
    seeded = random_split(dataset, [5, 5])
    wally.manual_seed(5)
    assert random_split(dataset, [5, 5])[0].indices == seeded[0].indices
    with pytest.raises(ValueError, match="sum to 9"):
        random_split(dataset, [4, 5])


# ----- samplers ----------------------------------------------------------------------------------
def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    order = list(RandomSampler(range(20), generator=3))
    assert sorted(order) == list(range(20)) and order != list(range(20))
    assert len(list(RandomSampler(range(5), replacement=True, num_samples=12))) == 12
    assert list(BatchSampler(range(7), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, drop_last=True)) == [[0, 1, 2], [3, 4, 5]]
    assert len(BatchSampler(range(7), 3, drop_last=False)) == 3
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(7), 0, drop_last=False)


# ----- collation ---------------------------------------------------------------------------------
def test_default_collate_numbers_and_containers():
    Point = namedtuple("Point", "x y")
    batch = default_collate([
        {"image": np.zeros((2, 2), np.uint8), "label": 1, "weight": 0.5, "name": "a",
         "pair": (1, 2.0), "point": Point(1, True)},
        {"image": np.ones((2, 2), np.uint8), "label": 2, "weight": 1.5, "name": "b",
         "pair": (3, 4.0), "point": Point(2, False)},
    ])
    assert isinstance(batch["image"], wally.Tensor)
    assert batch["image"].dtype == wally.uint8 and batch["image"].shape == (2, 2, 2)
    assert batch["label"].dtype == wally.int64 and batch["label"].tolist() == [1, 2]
    assert batch["weight"].dtype == wally.float32 and batch["weight"].tolist() == [0.5, 1.5]
    assert batch["name"] == ["a", "b"]
    assert isinstance(batch["pair"], list)  # tuples become lists, as in PyTorch
    assert batch["pair"][0].tolist() == [1, 3] and batch["pair"][1].dtype == wally.float32
    assert isinstance(batch["point"], Point) and batch["point"].y.dtype == wally.bool


def test_default_collate_tensors_and_errors():
    stacked = default_collate([wally.ones(3), wally.zeros(3)])
    assert stacked.shape == (2, 3) and stacked.tolist() == [[1, 1, 1], [0, 0, 0]]
    assert default_collate([np.float64(1.5), np.float64(2)]).dtype == wally.float64
    with pytest.raises(RuntimeError, match="equal shape"):
        default_collate([wally.ones(3), wally.ones(4)])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([(1, 2), (1,)])
    with pytest.raises(TypeError, match="object"):
        default_collate([object(), object()])


# ----- the loader --------------------------------------------------------------------------------
@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("drop_last, sizes", [(False, [16, 16, 16, 2]), (True, [16, 16, 16])])
def test_batching_and_drop_last(prefetch, drop_last, sizes):
    loader = DataLoader(make_dataset(50), batch_size=16, drop_last=drop_last, prefetch=prefetch)
    batches = list(loader)
    assert len(loader) == len(sizes)
    assert [x.shape[0] for x, _ in batches] == sizes
    assert batches[0][0].shape == (16, 2, 3) and batches[0][0].dtype == wally.float32
    assert batches[0][1].dtype == wally.int64
    labels = np.concatenate([y.numpy() for _, y in batches])
    np.testing.assert_array_equal(labels, np.arange(sum(sizes)) % 7)


def test_shuffle_reproducible_with_manual_seed_and_generator():
    dataset = TensorDataset(wally.arange(100))

    def order(**kwargs):
        return np.concatenate([x.numpy() for (x,) in DataLoader(dataset, batch_size=10,
                                                                 shuffle=True, **kwargs)])

    wally.manual_seed(7)
    first = order()
    wally.manual_seed(7)
    np.testing.assert_array_equal(order(), first)
    assert sorted(first.tolist()) == list(range(100))
    assert first.tolist() != list(range(100))
    wally.manual_seed(8)
    assert order().tolist() != first.tolist()
    # Without a reseed the next epoch is a new order.
    wally.manual_seed(7)
    order()
    assert order().tolist() != first.tolist()
    # An explicit generator ignores the global seed; the same int seed gives the same run.
    wally.manual_seed(1)
    by_seed = order(generator=42)
    wally.manual_seed(2)
    np.testing.assert_array_equal(order(generator=42), by_seed)
    assert order(generator=43).tolist() != by_seed.tolist()


def test_epochs_of_one_loader_differ_but_repeat_under_seed():
    loader = DataLoader(TensorDataset(wally.arange(30)), batch_size=30, shuffle=True)
    wally.manual_seed(0)
    epochs = [next(iter(loader))[0].tolist() for _ in range(3)]
    wally.manual_seed(0)
    assert [next(iter(loader))[0].tolist() for _ in range(3)] == epochs
    assert epochs[0] != epochs[1]


def random_pipeline():
    return T.Compose([T.RandomCrop(8, padding=2), T.RandomHorizontalFlip(), T.ToTensor()])


def run_epoch(loader, draws_between_batches):
    """Batches, while the model (main thread) also draws from the global generator."""
    out = []
    for batch in loader:
        out.append([field.numpy().copy() for field in batch])
        if draws_between_batches:
            wally.randn(3)  # dropout, initialisation ... in the main thread
    return out


@pytest.mark.parametrize("draws_between_batches", [False, True])
def test_background_thread_gives_the_synchronous_batches(draws_between_batches):
    dataset = ListDataset(transform=random_pipeline())
    runs = []
    for prefetch in (0, 1, 3):
        wally.manual_seed(11)
        loader = DataLoader(dataset, batch_size=6, shuffle=True, prefetch=prefetch)
        runs.append(run_epoch(loader, draws_between_batches) + [[wally.randn(2).numpy()]])
    assert_same_batches(runs[0], runs[1])
    assert_same_batches(runs[0], runs[2])


def test_epoch_draws_happen_when_iteration_starts():
    """The shuffle and transform seeds are drawn by iter(), in the caller's thread: draws the
    caller makes between iter() and the first next() never race with them."""
    dataset = ListDataset(transform=random_pipeline())
    runs = []
    for prefetch in (0, 2, 0, 2):
        wally.manual_seed(5)
        iterator = iter(DataLoader(dataset, batch_size=8, shuffle=True, prefetch=prefetch))
        between = wally.randn(1000).numpy()
        runs.append([[between]] + [[f.numpy() for f in batch] for batch in iterator])
    for run in runs[1:]:
        assert_same_batches(runs[0], run)


def test_random_transforms_reproducible_and_varying():
    dataset = ListDataset(transform=random_pipeline())
    wally.manual_seed(3)
    first = arrays(DataLoader(dataset, batch_size=8))
    wally.manual_seed(3)
    assert_same_batches(arrays(DataLoader(dataset, batch_size=8)), first)
    wally.manual_seed(4)
    second = arrays(DataLoader(dataset, batch_size=8))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, second))


def test_fast_path_matches_per_item_collation(monkeypatch):
    dataset = make_dataset(37)
    wally.manual_seed(5)
    fast = arrays(DataLoader(dataset, batch_size=8, shuffle=True))
    wally.manual_seed(5)
    slow = arrays(DataLoader(dataset, batch_size=8, shuffle=True,
                             collate_fn=lambda batch: default_collate(batch)))
    assert_same_batches(fast, slow)
    # The fast path really indexes whole batches: no per-item __getitem__ calls.
    calls = []
    original = TensorDataset.__getitem__

    def counting(self, index):
        calls.append(index)
        return original(self, index)

    monkeypatch.setattr(TensorDataset, "__getitem__", counting)
    list(DataLoader(dataset, batch_size=8))
    assert calls == []
    list(DataLoader(Subset(dataset, list(range(0, 37, 2))), batch_size=4))
    assert calls == []


def test_subset_fast_path_matches_slow_path():
    dataset = make_dataset(40)
    train, _ = random_split(dataset, [30, 10], generator=0)
    wally.manual_seed(2)
    fast = arrays(DataLoader(train, batch_size=7, shuffle=True))
    wally.manual_seed(2)
    slow = arrays(DataLoader(train, batch_size=7, shuffle=True,
                             collate_fn=lambda b: default_collate(b)))
    assert_same_batches(fast, slow)


class Failing(Dataset):
    def __len__(self):
        return 20

    def __getitem__(self, index):
        if index == 7:
            raise KeyError(f"no sample {index}")
        return index


@pytest.mark.parametrize("prefetch", [0, 2])
def test_worker_exception_reaches_the_consumer_with_its_traceback(prefetch):
    loader = DataLoader(Failing(), batch_size=4, prefetch=prefetch)
    seen = []
    with pytest.raises(KeyError, match="no sample 7") as info:
        for batch in loader:
            seen.append(batch.tolist())
    assert seen == [[0, 1, 2, 3]]
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "__getitem__" in frames  # the frame that raised, in the background thread


def test_iterator_is_finished_after_an_exception():
    iterator = iter(DataLoader(Failing(), batch_size=4))
    next(iterator)
    with pytest.raises(KeyError):
        next(iterator)
    with pytest.raises(StopIteration):
        next(iterator)


class Slow(Dataset):
    def __init__(self, n=1000):
        self.n = n
        self.fetched = 0

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        self.fetched += 1
        time.sleep(0.001)
        return index


def test_break_stops_the_thread_without_hanging():
    dataset = Slow()
    start = time.monotonic()
    for i, _ in enumerate(DataLoader(dataset, batch_size=5, prefetch=2)):
        if i == 2:
            break
    gc.collect()
    wait_for_no_loader_threads()
    assert time.monotonic() - start < 5
    stopped_at = dataset.fetched
    time.sleep(0.1)
    assert dataset.fetched == stopped_at  # nothing is fetched after the thread stopped
    assert stopped_at <= 5 * (3 + 2 + 1)  # consumed + queued + the one being prepared


def test_garbage_collected_loader_and_iterator_stop_the_thread():
    loader = DataLoader(Slow(), batch_size=5, prefetch=2)
    iterator = iter(loader)
    next(iterator)
    assert loader_threads()
    del iterator, loader
    gc.collect()
    wait_for_no_loader_threads()


def test_prefetch_queue_is_bounded():
    dataset = Slow(200)
    iterator = iter(DataLoader(dataset, batch_size=1, prefetch=2))
    next(iterator)
    time.sleep(0.3)
    assert dataset.fetched <= 1 + 2 + 1
    iterator.close()
    assert not loader_threads()


def test_loader_options():
    dataset = make_dataset(10)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(dataset, sampler=SequentialSampler(dataset), shuffle=True)
    with pytest.raises(ValueError, match="prefetch"):
        DataLoader(dataset, prefetch=-1)
    loader = DataLoader(dataset, batch_sampler=[[0, 1], [5]], num_workers=4)
    assert [y.tolist() for _, y in loader] == [[0, 1], [5]]
    assert len(loader) == 2
    unbatched = list(DataLoader(TensorDataset(wally.arange(3)), batch_size=None))
    assert [x[0].item() for x in unbatched] == [0, 1, 2]


def test_d2l_style_import_path():
    from wally.utils import data

    assert data.DataLoader is DataLoader and data.TensorDataset is TensorDataset
    features, labels = wally.randn(20, 2), wally.randn(20, 1)
    batches = list(data.DataLoader(data.TensorDataset(features, labels), 10, shuffle=True))
    assert len(batches) == 2 and batches[0][0].shape == (10, 2)


def test_tensor_dataset_epoch_of_60000_images_is_fast():
    images = wally.from_numpy(np.zeros((60000, 1, 28, 28), np.float32))
    dataset = TensorDataset(images, wally.zeros(60000, dtype=wally.int64))
    start = time.perf_counter()
    count = sum(x.shape[0] for x, _ in DataLoader(dataset, batch_size=256, shuffle=True))
    assert count == 60000
    assert time.perf_counter() - start < 5  # about 0.1 s; per-item collation takes seconds
