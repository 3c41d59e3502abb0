"""What the worker shares with the TypeScript side, read from the JSON files in contracts/
(settings.contracts_dir) that `npm run contracts` generates from the TypeScript definitions:

- loader.py      reads those files, the one place that does;
- payloads.py    the step payloads as TypedDicts (generated from the schemas by dev_support/generate_payloads.py);
- validation.py  checks a payload or a result against its JSON Schema;
- steps.py       the step catalogue: which queue carries which step, in which pool, under which contract;
- redis_keys.py  the Redis keys both languages use, and the event-log limits;
- vocabulary.py  the words of each portrait parameter;
- addresses.py   the address blocks the SSRF guard is made of.
"""
