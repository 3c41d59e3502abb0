"""GPU benchmarks: full-size architectures at random weights, run through the worker's own engine,
VLM backend and checks. Nothing here reaches the Hub: LoRAs are read from a local cache, as the
worker reads them when offline."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub is first imported
