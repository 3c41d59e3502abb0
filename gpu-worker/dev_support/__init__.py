"""Development and test tools beside the worker package, not shipped in its image: the tiny
random-weight models and the generator of the typed payload module."""
