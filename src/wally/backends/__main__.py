"""``python -m wally.backends``: print the convolution's dispatch table in Markdown (the copy in
``docs/CONVOLUTION.md`` is this output)."""

from wally.backends.conv import algorithms

print(algorithms().markdown(), end="")
