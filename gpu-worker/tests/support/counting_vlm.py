"""A spy around a real VLM backend: it records what each call was shown (how many images, how many
answers asked at once) and passes the call on unchanged."""

import threading


class CountingVlm:
    def __init__(self, backend):
        self._backend = backend
        self.calls: list[dict] = []  # one per backend call: {"images": [n per answer], "instructions": [...]}
        self._lock = threading.Lock()

    def _record(self, images_per_answer: list[int], instructions: list[str]) -> None:
        with self._lock:
            self.calls.append({"images": images_per_answer, "instructions": instructions})

    def complete(self, images, instruction, schema, temperature):
        self._record([len(images)], [instruction])
        return self._backend.complete(images, instruction, schema, temperature)

    def complete_batch(self, requests, schema, temperature):
        self._record([len(images) for images, _ in requests], [instruction for _, instruction in requests])
        return self._backend.complete_batch(requests, schema, temperature)
