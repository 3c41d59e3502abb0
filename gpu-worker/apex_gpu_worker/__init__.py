"""APEX Portraits GPU worker: consumes the prompt, generate, validate and report queues."""
