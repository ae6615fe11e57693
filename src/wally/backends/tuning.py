"""Every tuning constant of the convolution and pooling engine, in one place, each with the
measurement behind it.

The kernels read these at call time (``tuning.ROWS_BYTES``, not a copy taken at import), so
an experiment can change one and measure, and a test can shrink one to reach a code path:

    >>> from wally.backends import tuning
    >>> tuning.ROWS_MIN_POSITIONS
    256

Where a constant decides *which kernel runs*, the rule that reads it is in
:mod:`wally.backends.conv`'s table (``wally.backends.conv.algorithms()``); the others size the
chunks a kernel works through, and never change its result beyond the order of its sums.
Measurements are from the machine the commits were made on (2 cores, OpenBLAS); ``git log -S
NAME`` finds the commit that set each one.
"""

from __future__ import annotations

# ----- the C allocator (wally.backends.memory, set at import) -------------------------------------
# Freed blocks below this come back from the heap instead of fresh mmap'd pages (glibc's own
# sliding threshold stops here too), and the heap is trimmed only past MALLOC_TRIM_BYTES free at
# its top. LeNet epoch, batch 256, 2 cores: 150,000 page faults an epoch before, 6 after;
# 1.11 s -> 0.86 s at 2 threads and 1.13 s -> 1.00 s at 1, peak RSS unchanged (101 vs 104 MB).
# 16 MiB / 128 MiB measured the same; 64 MiB / 1 GiB no better.
MALLOC_MMAP_BYTES = 32 << 20
MALLOC_TRIM_BYTES = 256 << 20

# ----- the memory budget (wally.backends.conv.set_memory_budget) --------------------------------
# im2col columns of one chunk, all threads together, unless WALLY_CONV_MEMORY_BUDGET says else.
DEFAULT_MEMORY_BUDGET = 256 << 20
# Columns built per chunk when the budget allows more: small enough to stay in cache between
# the copy that fills them and the GEMM that reads them (LeNet's and ResNet's layers run about
# 1.7x faster than with the whole matrix at once, measured).
CACHE_BYTES = 2 << 20
# An im2col weight gradient's chunks have at least this many columns where the budget allows
# (wally.backends.conv.weight_grad_limit), however tall the columns: each chunk's partial is
# C·k × O, and 2 MiB chunks of 4608-row columns (ResNet-18's 512-channel layers on 4×4 maps)
# spent their time adding 9 MB partials. Weight gradients at batch 64, 1 / 2 threads, with
# WEIGHT_GRAD_DIRECT_ENTRIES: 512 ch 4×4 215 -> 37 / 189 -> 20 ms; 256 ch 8×8 92 -> 36 /
# 61 -> 21 ms; 64 ch 32×32 61 -> 56 / 41 -> 32 ms (1024 columns: 62 / 45 ms).
WEIGHT_GRAD_COLUMNS = 4096
# A chunk's weight-gradient product of at least this many entries (K·O) runs as dY @ colsᵀ,
# added to the total as it is, instead of cols @ dYᵀ added transposed: 4608 × 1024 × 512
# 45 -> 29 ms, 2304 × 1024 × 256 10.0 -> 8.1 ms, but 1152 × 1024 × 128 2.2 -> 2.4 ms.
WEIGHT_GRAD_DIRECT_ENTRIES = 256 << 10
# The threads the budget is planned for under use_deterministic_algorithms, whatever the thread
# count (so that the chunks, and the bits, do not depend on it).
DETERMINISTIC_SHARES = 4

# ----- im2col GEMMs on short columns --------------------------------------------------------------
# OpenBLAS multiplies by a matrix of few rows (``C·∏k`` below ~512, as in LeNet's first layer)
# 1.6-2.5x slower once the product runs past ~8192 columns, in every orientation the kernels
# use (measured: 25 rows × 20608 columns against 4096 at a time): such products are split.
SKINNY_ROWS = 512
SKINNY_COLUMNS = 4096
# NumPy's matmul keeps the GIL through the BLAS call when its result has at most 500 entries
# (measured on two threads: 0.7-1.0x for a 30 × 16 result, 1.8x for 30 × 17), and a weight
# gradient's result is that small in LeNet: the chunk threads took turns.  ``dot`` and larger
# (batched) products release it.
GIL_HELD_ENTRIES = 500

# ----- the row layout ("rows" in the table) -------------------------------------------------------
# Bytes of one chunk's shifted copies; measured on LeNet's conv2 (16 to 64 images).
ROWS_BYTES = 512 << 10
# Deeper columns (C·k_h·k_w) make the GEMM, not the copies, the cost; there k_h GEMMs of depth
# C·k_w run slower than im2col's one, and reordering W costs more than it saves (measured on
# ResNet's 256- and 512-channel 3×3 layers: up to 2x slower; LeNet's 150 and a 32-channel 5×5's
# 800: 1.2-2x faster).
ROWS_MAX_DEPTH = 1024
# Where im2col would take wide rows (stride 1, little padding), the row layout still wins from
# 16 to 128 channels: forward and weight gradient at batch 8-64, 1 and 2 threads, 0.75-0.91x
# im2col's time (3×3 on 16-128 channels, 5×5 on 32), 0.97-1.05 at 16 channels; ResNet's
# 128-channel 3×3 (1152 deep) 0.80-0.88x, its 256-channel one (2304) 1.0-1.15x.  Each of its
# k_h GEMMs is C·k_w deep: 3 channels (9 deep) took 1.2-2.3x im2col's time.
ROWS_WIDE_MAX_DEPTH = 1152
ROWS_WIDE_MIN_ROW_DEPTH = 32
# ... and from this many output positions (all images together): below it one image's work is
# small and im2col's single GEMM on BLAS's own threads wins (128 channels on 16×16, 3×3: batch
# 1 0.91 against 0.79 ms at 1 thread, 0.75 against 0.52 at 2; batch 2 at 2 threads 1.33
# against 1.10; 64 channels on 32×32 at batch 1: 0.82 against 0.89 and 0.64 against 0.71).
ROWS_WIDE_MIN_POSITIONS = 1024
# ... except for the weight gradient of few output channels, where the shallow GEMMs are cheap
# and im2col's copies are the cost: 6-8 output channels from 1-3 input channels (LeNet's conv1,
# its CIFAR variant, 2 -> 8 channels) 0.33-0.89x im2col's time at 1 and 2 threads; 16 to 64
# output channels from 1-3 took 1.3-2.6x.
ROWS_WIDE_FEW_OUTPUTS = 8
# Fewer output positions (all images together) than this: im2col's one GEMM costs less than
# reordering W and k_h GEMMs (LeNet's conv2 at batch 1: 34 against 38 µs; at batch 4, 72
# against 66 µs).
ROWS_MIN_POSITIONS = 256

# ----- the compiled direct convolution ("direct" in the table, wally.backends.accel) -----------
# The direct kernel makes C·∏k passes over each output channel's row sums, where a GEMM keeps
# its sums in registers: it pays only where im2col's copies (∏k per pixel) cost more than the
# GEMM, for few taps and few output channels. Forward, 1 thread, direct (four taps a pass)
# against im2col: LeNet's conv1 (25 deep, 6 out) 2.1-2.3 against 2.6-2.8 ms at batch 256;
# 2 → 8 3×3 on 32×32 0.76 against 0.83 ms; 1 → 16 5×5 1.41 against 1.46 ms; 3 → 16 3×3 2.07
# against 1.90 ms; ResNet's CIFAR stem 3 → 64 3×3 9.8 against 5.2 ms (batch 64); LeNet's conv2
# (150 deep) 6.3 against 2.9 ms (one tap a pass).
# The limits are per group (C/groups·∏k deep, O/groups outputs): a GEMM's advantage is reusing
# one group's columns for all its outputs, and a depthwise layer has one output a group.
# Depthwise 3×3 at 1 thread, direct against NumPy's per-tap multiply-adds: (64,128,32,32) 16.4
# against 67.2 ms forward; (64,32,112,112) 56.8 against 166.6; 5×5 (64,256,16,16) 11.9 against
# 108.9; dilated (16,64,56,56) d2 5.0 against 26.0 (PyTorch, the first: 23 ms).
DIRECT_MAX_DEPTH = 32
DIRECT_MAX_OUT_CHANNELS = 8
# Images per chunk of the compiled depthwise weight gradient, whatever the thread count: each
# chunk's partial is added in chunk order, so the bits do not depend on the threads either.
DIRECT_GRAD_IMAGES = 8

# ----- the flipped input gradient ("flipped" in the table) ---------------------------------------
# The flipped convolution reads dY padded back to the input's size: worth it only where that
# adds little (padding about 'same'); LeNet's conv2 (valid 5×5 on 14×14, input 1.96x its output)
# input gradient went from 16-25 ms flipped to 5-6 ms added back (benchmarks/README.md).
FLIPPED_MAX_GROWTH = 1.25

# ----- Winograd F(2×2, 3×3) ("winograd" in the table) ---------------------------------------------
# Chunks of Winograd are about 1 MiB whatever the budget; below this chunk limit im2col, which
# honours smaller budgets exactly, runs instead.
WINOGRAD_MIN_CHUNK_BYTES = 1 << 20
# Measured at 1 thread, float32: 32 channels break even, 16 lose 1.7x.  How much work a layer
# needs, against the row layout on wide rows (the rule after it) and im2col, forward, at 1 / 2
# threads (2026-12-03), N·OH·OW·C·O multiply-adds:
#   64 ch on 32×32, batch 1 (4.2M): 0.96 against 0.82 ms (rows) / 1.24 against 0.64
#   64 ch on 32×32, batch 4 (17M): 3.5 against 3.3 / 2.6 against 2.1
#   64 ch on 32×32, batch 16 (67M): 13.3 against 13.2 / 7.3 against 7.1 (a tie)
#   128 ch on 16×16, batch 4 (17M): 2.5 against 3.0 / 2.2 against 2.1
#   128 ch on 16×16, batch 16 (67M): 9.0 against 11.5 / 5.3 against 6.7
#   256 ch on 8×8, batch 16 (67M): 7.3 against 11.2 (im2col) / 5.5 against 6.5
#   512 ch on 4×4, batch 8 (34M): 8.9 against 6.0 (im2col) / 7.9 against 3.4
#   512 ch on 4×4, batch 32 (134M): 16.6 against 23.4 / 13.1 against 13.5
#   512 ch on 4×4, batch 64 (268M): 27.1 against 46.2 / 19.1 against 25.7
WINOGRAD_MIN_CHANNELS = 48
WINOGRAD_MIN_MACS = 1 << 26
# Transformed tiles per chunk, in bytes of V (16·tiles·C values), but at least MIN_TILES
# tiles, the rows of each GEMM, so that wide channels don't stream all 16·C·O of U for a few
# tiles (measured at 1 thread: 1 MiB / 128 tiles beat 256-512 KiB by up to 2x at 256-512
# channels).  4 MiB: fewer, longer calls for the transforms; forward at 1 thread, median of 9,
# 1 → 4 MiB, NumPy's transforms: batch 64, 64 ch on 32×32 53.7 → 48.8-49.3 ms, 128 on 16×16
# 37.7 → 28.6-30.6, 256 on 8×8 23.4 → 20.8-21.1, 512 on 4×4 20.4 → 21.2-21.5; batch 1-8 on
# 7×7 to 112×112 maps 5-15% faster; 8 and 16 MiB slower again (64 ch: 52.4 and 78.1 ms).
TILE_BYTES = 1 << 22
MIN_TILES = 128
# Buffers up to this size are kept per thread between calls, as im2col's are: a fresh one pays
# a page fault per 4 KiB on every call (a batch-1 64-channel layer ran 2.5x slower).  Larger
# ones are allocated per call: kept, they came to ~60 MiB in ResNet-18 and lifted its training
# step's peak memory above PyTorch's (899 against 848 MiB, measured).
WINOGRAD_KEEP_BYTES = 1 << 20

# ----- im2col / col2im on whole arrays (wally._windows) -------------------------------------------
# Bytes of input (all images, a few channels) that im2col and col2im work through at a time: a
# slab that stays in cache while all ∏k taps read or add it, instead of streaming the whole
# input from memory once per tap (about 1.5x faster for ResNet's 64x64x32x32).
SLAB_BYTES = 1 << 20
# Wide rows make each tap one contiguous copy, but multiply the GEMM's columns by padded/out
# width: worth it only while that is small (ResNet-18 on 32×32 images ran 15% faster with exact
# columns for its 4-, 8- and 16-pixel stages; measured).
MAX_JUNK = 1.15

# ----- pooling (wally.functional.pool) ---------------------------------------------------------
# Bytes of (padded) input planes processed at a time: small enough to stay in cache while every
# kernel tap reads them.
POOL_CHUNK_BYTES = 1 << 20

# ----- threads (wally._parallel) ------------------------------------------------------------------
# sum_chunks: partials of at most this many bytes in all are summed after the threads are done
# (folding them costs ~0.5 µs each, a lock per chunk more); larger ones as they come, with
# at most PARKED_BYTES of them (at least one per thread) waiting for their turn.
GATHERED_BYTES = 256 << 10
PARKED_BYTES = 16 << 20
# A fresh multi-MiB buffer costs a page fault per 4 KiB page on every call (about a third of a
# LeNet layer's time at batch 256, measured); buffers up to this size are kept per thread.
WORKSPACE_BYTES = 32 << 20
# Allocations from this size on are checked against the memory the system has left: Linux hands
# out address space it may not be able to back (overcommit), so an array that cannot fit would
# not fail at ``empty`` but kill the process when its pages are touched.  Smaller ones are not
# checked (reading /proc/meminfo costs ~30 µs, more than a small layer).
CHECKED_BYTES = 64 << 20
# wally._parallel.matmul (linear layers): below ONE_THREAD_MACS multiply-adds a GEMM runs on the
# calling thread (batch-1 layers end here), held to one BLAS thread from BLAS_THREADED_MACS on;
# below SPLIT_MACS it runs on the calling thread with BLAS held to one thread; from SPLIT_MACS
# on, its rows are split among the threads. LeNet's linear layer (256x400 @ 400x120, 12M MACs),
# forward + backward at 2 threads: split 1.00 ms, one thread 0.67 ms (0.62 ms at 1 thread),
# OpenBLAS's own two threads 0.48 ms alone but 1.05 s a LeNet epoch against 0.83 s (its idle
# threads spin on the core the chunked kernels need). Under use_deterministic_algorithms every
# GEMM from ONE_THREAD_MACS on is split into DETERMINISTIC_BLOCKS, at any thread count.
# Where oneDNN is on, a float32 GEMM from ONE_THREAD_MACS on at more than one thread runs as
# oneDNN's matmul on its OpenMP threads instead (not under use_deterministic_algorithms):
# 2-core AMD EPYC (AVX-512), 2 threads, LeNet's fc1 forward 11.3 -> 5.4 ms and backward 11.5
# -> 6.8 ms over 40 batches (benchmarks.profile_epoch); 60-batch LeNet epochs alternating
# within one process, ten each, min / median: 0.456 / 0.482 s against 0.478 / 0.496 s with
# BLAS held to one thread, and 0.485 / 0.499 against 0.492 / 0.515 in a second run.
ONE_THREAD_MACS = 1 << 20
SPLIT_MACS = 1 << 24
# OpenBLAS threads a GEMM from 65536 x GEMM_MULTITHREAD_THRESHOLD (4) multiply-adds on; smaller
# ones run on the calling thread, so wally._parallel.one_blas_thread skips its ~7 us limit for
# them. Measured: (64,512) @ (512,10), 328K MACs, kept OpenBLAS's second thread busy (spinning)
# for the whole of 3,000 calls.
BLAS_THREADED_MACS = 1 << 18
# A convolution whose columns fit one chunk is split among the threads by images where each
# chunk keeps at least this many bytes of columns (wally._windows.shared_step): a kernel of one
# chunk leaves its GEMM to OpenBLAS's threads, which then spin on the cores the next chunked
# kernel needs (ResNet-18's 1×1 downsampling layers at batch 64).  Not tuned: a round figure
# between the layers of a LeNet at batch 1-2 (60-80 KB of columns, better left whole) and
# those 1×1 layers (256 KB to 1 MB a thread, split).
SPLIT_MIN_BYTES = 128 << 10
# ReLU, sigmoid and tanh (wally._parallel.elementwise) split arrays of at least this many bytes
# by rows among the threads. Forward + backward at 2 threads: 4.8 MB 1252 -> 1104 us, 51 MB
# 63 -> 29 ms; a 1.6 MB array got slower split (370 -> 625 us), so 1 MiB was too low.
ELEMENTWISE_BYTES = 4 << 20
# Row blocks of a split GEMM under use_deterministic_algorithms, at any thread count (OpenBLAS
# may sum a block of other rows in another order, measured).
DETERMINISTIC_BLOCKS = 8

# ----- oneDNN (wally.backends.onednn): where wally's own kernels stay ---------------------------
# Measured with benchmarks/onednn_passes.py: each pass forced to oneDNN against the table's own
# choice without it, wally alone, medians, 1 / 2 threads (time with oneDNN over time without).
#
# A 2-core Intel Xeon (family 6 model 167, AVX-512; oneDNN 3.2's jit:avx512_core kernels,
# 2026-12-04): oneDNN is within 0.8-1.2 of PyTorch's own pass everywhere, and faster than
# wally's kernels everywhere except depthwise layers on the numba direct kernels:
#   depthwise 3×3 (64,128,32,32): forward 1.43 / 1.61, weight gradient 1.08 / 1.52, input
#     gradient 1.51 / 1.78;
#   LeNet conv1 (256,1,28,28)→6 k5 p2, the direct kernel's region: forward 0.96 / 0.90, weight
#     gradient 1.01 / 0.50, input gradient 1.96 / 0.87 (a first layer: rarely asked for);
#   ResNet's 3×3 layers at batch 64, where Winograd runs: forward 0.57 (64 ch), 0.81 (128),
#     0.97 (256), 0.88 (512) / 0.50, 0.74, 0.84, 0.73; input gradient 0.68, 0.82, 0.95, 0.65 /
#     0.58, 0.77, 0.81, 0.51; weight gradients 0.74, 0.70, 0.69, 0.97 (4608 deep) / 0.66, 0.62,
#     0.61, 0.89;
#   the rest (LeNet conv2, a CIFAR stem, strided 3×3, 1×1, dilated, conv1d, batch 1):
#     0.25-0.96 (the stem's input gradient 1.08 at 1 thread).
# So where oneDNN's kernel is an AVX-512 one, only the depthwise direct layers stay wally's.
#
# A 2-core AMD EPYC (Zen 1, AVX2; oneDNN 3.2's jit:avx2 kernels, 2026-12-03):
#   LeNet conv1, the direct kernel's region: forward 1.31 / 1.21, weight gradient 1.36 / 1.17,
#     input gradient 1.30 / 0.83;
#   depthwise 3×3 (64,128,32,32), the direct kernels (numba): 1.51 / 1.60, 1.10 / 1.43,
#     1.62 / 1.55;
#   ResNet's 3×3 layers at batch 64, where Winograd runs, forward / input gradient: 64 ch on
#     32×32 0.98 / 1.01 and 0.84 / 0.90; 128 on 16×16 1.44 / 1.28 and 1.23 / 1.18; 256 on 8×8
#     0.65 / 1.52 and 0.68 / 1.18; 512 on 4×4 1.77 / 1.87 and 1.59 / 1.56;
#   their weight gradients: 64 ch 0.53 / 0.51, 128 ch 0.47 / 0.48, 256 ch (2304 deep) 0.99 /
#     0.96, 512 ch (4608 deep) 1.48 / 1.77, hence the depth limit;
#   where oneDNN falls back to its own im2col ("gemm:jit"): a dilated 3×3 weight gradient 1.20 /
#     1.40, a conv1d k9 input gradient 1.75 / 1.69 (so that implementation is never chosen);
#   everything else it runs (LeNet conv2, a CIFAR stem, strided 3×3, 1×1, dilated, conv1d, batch
#     1): 0.42-1.08, most 0.55-0.90.
# So where oneDNN's kernel is not an AVX-512 one, the direct kernels' layers, Winograd's forward
# and input gradient and weight gradients deeper than this stay wally's:
ONEDNN_MAX_WEIGHT_GRAD_DEPTH = 2304
# ReLU (wally.ops.ReLU) runs as oneDNN's eltwise primitive, where oneDNN is on, at more than
# one thread, on float32 arrays of at least this many bytes (its OpenMP threads spin between
# calls, so a hand-off costs microseconds, where wally's own threads need 65-90 us).
# Its forward pass stays NumPy's (oneDNN's turns NaN into 0), and where oneDNN is on at more
# than one thread it runs on the calling thread, not split among wally's threads: 60-batch
# LeNet epochs at 2 threads alternating within one process, ten each, medians split /
# unsplit: with PyTorch's libgomp (torch imported first, libgomp's default spin count) 0.478 /
# 0.463, 0.466 / 0.448, 0.440 / 0.428 s; wally alone 0.461 / 0.465 s (a tie).
ONEDNN_RELU_BYTES = 256 << 10
# GNU OpenMP's spin count (GOMP_SPINCOUNT) for oneDNN's threads, set while its library loads
# unless the user set GOMP_SPINCOUNT or OMP_WAIT_POLICY: how long an idle OpenMP thread spins
# before it sleeps. libgomp's default, 300,000 spins, kept oneDNN's idle thread busy for
# milliseconds after each convolution, on the core that wally's own thread needs for the
# batch normalisation or ReLU right after it. Measured on a 2-core AMD EPYC (AVX-512), 2
# threads, alternating processes, 3 rounds each, default / 10,000: a ResNet-18 step at batch
# 64 755 / 710, 745 / 665, 720 / 710 ms (its batch normalisations 132 / 91, 131 / 86,
# 125 / 94 ms; convolutions unchanged); 40 LeNet batches 0.354 / 0.331, 0.336 / 0.323,
# 0.329 / 0.333 s (the large ReLU forward 26 / 20 ms). 1,000 made oneDNN's own back-to-back
# calls slower (LeNet conv2's backward 86 -> 99-118 ms an epoch-slice).
ONEDNN_GOMP_SPINCOUNT = 10_000
