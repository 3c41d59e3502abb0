"""Learning a person: a LoRA trained on the portrait model's own transformer from a few prepared
photos, in our own loop (flow matching, the objective the FLUX families are trained with)."""
