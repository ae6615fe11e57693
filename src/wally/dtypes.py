"""The dtypes, under PyTorch's names. They are NumPy dtype objects, so ``t.dtype == wally.float32``
and ``t.numpy().dtype`` agree.
"""

from wally.backend import xp

float16 = half = xp.dtype("float16")
float32 = float = xp.dtype("float32")
float64 = double = xp.dtype("float64")
int8 = xp.dtype("int8")
uint8 = xp.dtype("uint8")
int16 = short = xp.dtype("int16")
int32 = int = xp.dtype("int32")
int64 = long = xp.dtype("int64")
bool = xp.dtype("bool")


__all__ = [
    "float16", "half", "float32", "float", "float64", "double", "int8", "uint8", "int16",
    "short", "int32", "int", "int64", "long", "bool",
]
