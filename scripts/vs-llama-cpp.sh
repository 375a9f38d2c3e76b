#!/usr/bin/env bash
# lmwb vs llama.cpp, side by side in one run: prefill (pp512) and decode (tg128) tok/s of
# `llama-bench` and `lmwb bench` on the default model file as shipped (Q4_1) and on its
# Q8_0 requantization, single stream, same thread count. Prints both engines' tables and
# the ratios lmwb/llama.cpp against the targets (tg >= 1.10, pp >= 1.00), and writes
# everything as JSON to runs/vs-llama-cpp/<UTC timestamp>.json.
#
# llama-bench is built from the llama.cpp that the llama-cpp-python==0.3.36 source
# distribution on PyPI vendors (sha256-checked); the sdist, the sources and the build are
# cached, so a second run downloads and builds nothing.
#
#   scripts/vs-llama-cpp.sh [-r N] [--threads N]
#
#   -r, --repetitions N  timed repetitions of each test, per engine (default 5; env LMWB_VS_REPS)
#   -t, --threads N      threads for both engines (default: 2, or fewer when the machine has
#                        fewer CPUs; env LMWB_VS_THREADS); lmwb gets RAYON_NUM_THREADS=N
#   LMWB_CACHE_DIR       cache root (default ~/.cache/lmwb); llama.cpp lives in llama.cpp-0.3.36/
#   LMWB_MODELS_DIR      models (default ~/.cache/lmwb/models; scripts/fetch-models.sh fills it)
#
# Exit status: 0 when every ratio meets its target, 1 when one misses it (after printing
# and writing everything), 2 on a usage or setup error.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { echo "vs-llama-cpp: $*" >&2; }
die() { say "error: $*"; exit 2; }

reps=${LMWB_VS_REPS:-5}
nproc_=$(nproc 2>/dev/null || echo 1)
threads=${LMWB_VS_THREADS:-$(( nproc_ < 2 ? nproc_ : 2 ))}
while [ $# -gt 0 ]; do
  case $1 in
    -r|--repetitions) [ $# -ge 2 ] || die "$1 needs a value"; reps=$2; shift 2 ;;
    -t|--threads) [ $# -ge 2 ] || die "$1 needs a value"; threads=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "-r wants a positive integer, got '$reps'"
[[ $threads =~ ^[1-9][0-9]*$ ]] || die "--threads wants a positive integer, got '$threads'"

version=0.3.36
sdist_sha=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
cache="${LMWB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lmwb}/llama.cpp-$version"
models="${LMWB_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lmwb/models}"
sdist="$cache/sdist/llama_cpp_python-$version.tar.gz"
src="$cache/llama_cpp_python-$version/vendor/llama.cpp"
build="$cache/build"
build_log="$cache/build.log"
llama_bench="$build/bin/llama-bench"

# ---- tools -------------------------------------------------------------------------------
apt_install() {  # apt_install PACKAGE... (only as root with apt-get)
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing $* with apt-get"
    apt-get install -y -qq "$@" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq "$@" >/dev/null; }
  else
    return 1
  fi
}
command -v python3 >/dev/null 2>&1 || die "python3 is needed (apt-get install python3 python3-pip)"
command -v cargo >/dev/null 2>&1 || die "cargo is needed: install Rust from https://rustup.rs"

need_llama_build=0
[ -x "$llama_bench" ] || need_llama_build=1
if [ $need_llama_build = 1 ]; then
  if ! command -v c++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
    apt_install build-essential || die "a C/C++ compiler and make are needed (apt-get install build-essential)"
  fi
  if ! command -v cmake >/dev/null 2>&1; then
    if ! apt_install cmake; then
      say "installing cmake with pip (--user)"
      python3 -m pip install --quiet --user cmake || die "cmake is needed (apt-get install cmake, or pip install cmake)"
      export PATH="$(python3 -m site --user-base)/bin:$PATH"
    fi
  fi
fi

# ---- llama-bench from the llama-cpp-python sdist -----------------------------------------
if [ $need_llama_build = 1 ]; then
  mkdir -p "$cache/sdist"
  if [ ! -f "$sdist" ] || [ "$(sha256sum "$sdist" | cut -d' ' -f1)" != "$sdist_sha" ]; then
    rm -f "$sdist"
    say "downloading llama-cpp-python==$version (source distribution) from PyPI"
    # --no-binary for this package only: its build dependencies may come as wheels.
    python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python \
        -d "$cache/sdist" "llama-cpp-python==$version" >&2 \
      || die "could not download llama-cpp-python==$version's sdist from PyPI (is pypi.org reachable? try: python3 -m pip download --no-deps --no-binary llama-cpp-python llama-cpp-python==$version)"
    [ -f "$sdist" ] || die "pip did not leave $sdist"
    got=$(sha256sum "$sdist" | cut -d' ' -f1)
    [ "$got" = "$sdist_sha" ] || { rm -f "$sdist"; die "$sdist has sha256 $got, expected $sdist_sha; refusing to use it"; }
  fi
  if [ ! -f "$src/CMakeLists.txt" ]; then
    say "extracting $sdist"
    rm -rf "$cache/llama_cpp_python-$version"
    tar -xzf "$sdist" -C "$cache"
    [ -f "$src/CMakeLists.txt" ] || die "no vendor/llama.cpp in $sdist"
  fi
  say "building llama-bench (Release, native; log: $build_log)"
  t0=$(date +%s)
  if ! { nice -n 10 cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
           -DBUILD_SHARED_LIBS=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
           -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
           -DLLAMA_BUILD_TOOLS=ON \
         && nice -n 10 cmake --build "$build" --config Release --target llama-bench -j "$nproc_"; \
       } >"$build_log" 2>&1; then
    tail -n 20 "$build_log" >&2
    die "building llama-bench failed; the whole log is $build_log"
  fi
  echo "$(( $(date +%s) - t0 ))" >"$cache/build-seconds"
  say "built $llama_bench in $(cat "$cache/build-seconds") s"
else
  say "llama-bench is cached: $llama_bench"
fi

# ---- lmwb --------------------------------------------------------------------------------
say "cargo build --release"
cargo build --release --quiet || die "cargo build --release failed"
lmwb="$root/target/release/lmwb"

# ---- models ------------------------------------------------------------------------------
q41="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
q80="$models/SmolLM2-135M-Instruct.Q8_0.gguf"
[ -f "$q41" ] || die "the default model $q41 is missing: run scripts/fetch-models.sh (LMWB_MODELS_DIR=$models)"
if [ ! -f "$q80" ]; then
  say "making $q80 with lmwb models requantize"
  "$lmwb" models requantize "$q41" --to q8_0 --out "$q80" >&2 || die "lmwb models requantize failed"
fi

# ---- run, alternating which engine goes first --------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vs-llama-cpp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
started=$(date -u +%Y%m%d-%H%M%S)
say "pp512 + tg128, $reps repetitions, $threads threads; load average now: $load_start"

# llama.cpp's extra CPU buffer types (AMX on Xeons that have it) crash some machines (seen:
# a segfault in ggml_backend_amx_mul_mat); probe, and fall back to --repack 0 (no extra
# buffer types) when the default dies.
# (Run through sh -c so that the shell's "Segmentation fault" notice lands in the log.)
probe() { sh -c '"$@"; exit $?' probe "$llama_bench" -m "$q41" -p 8 -n 0 -r 1 -t "$threads" "$@" -o json \
            >/dev/null 2>>"$tmp/probe.log"; }
llama_extra=()
if ! probe; then
  if probe --repack 0; then
    llama_extra=(--repack 0)
    say "llama-bench crashes here with its extra buffer types (AMX/repack); running it with --repack 0"
  else
    tail -n 20 "$tmp/probe.log" >&2
    die "llama-bench does not run on $q41 (with or without --repack 0)"
  fi
fi

run_llama() {  # run_llama INDEX MODEL
  say "[$1] llama-bench ${llama_extra[*]} $(basename "$2")"
  "$llama_bench" -m "$2" -p 512 -n 128 -t "$threads" -r "$reps" "${llama_extra[@]}" -o json \
      >"$tmp/llama-$1.json" 2>"$tmp/llama-$1.log" \
    || { tail -n 20 "$tmp/llama-$1.log" >&2; die "llama-bench failed on $2"; }
}
run_lmwb() {  # run_lmwb INDEX MODEL
  say "[$1] lmwb bench $(basename "$2")"
  RAYON_NUM_THREADS=$threads "$lmwb" bench -m "$2" -p 512 -n 128 -r "$reps" --json \
      --out "$tmp/lmwb-$1" >"$tmp/lmwb-$1.json" 2>"$tmp/lmwb-$1.log" \
    || { tail -n 20 "$tmp/lmwb-$1.log" >&2; die "lmwb bench failed on $2"; }
}
i=0
for m in "$q41" "$q80"; do
  if [ $((i % 2)) = 0 ]; then run_llama $i "$m"; run_lmwb $i "$m"; else run_lmwb $i "$m"; run_llama $i "$m"; fi
  i=$((i + 1))
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# ---- report ------------------------------------------------------------------------------
mkdir -p "$root/runs/vs-llama-cpp"
out="$root/runs/vs-llama-cpp/$started.json"
python3 - "$tmp" "$out" "$started" "$reps" "$threads" "$load_start" "$load_end" \
    "$(cat "$cache/build-seconds" 2>/dev/null || echo null)" "$version" "${llama_extra[*]}" \
    "$q41" "$q80" <<'PY'
import json, os, platform, subprocess, sys

tmp, out, started, reps, threads, load_start, load_end, build_s, version, llama_extra = sys.argv[1:11]
files = sys.argv[11:]
shipped = {files[0]: "as shipped"}
TARGET = {"pp": 1.00, "tg": 1.10}

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"

def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:
        return "?"

rows = {"llama.cpp": [], "lmwb": []}
meta = {}
for i, path in enumerate(files):
    name = os.path.basename(path)
    for r in json.load(open(os.path.join(tmp, f"llama-{i}.json"))):
        if r["n_prompt"] > 0 and r["n_gen"] == 0:
            kind, n = "pp", r["n_prompt"]
        elif r["n_gen"] > 0 and r["n_prompt"] == 0:
            kind, n = "tg", r["n_gen"]
        else:
            continue
        rows["llama.cpp"].append(dict(model=name, kind=kind, test=f"{kind}{n}", mean=r["avg_ts"],
                                      sd=r["stddev_ts"], samples=r.get("samples_ts", []),
                                      threads=r.get("n_threads")))
        meta["llama.cpp"] = dict(build_commit=r.get("build_commit"), build_number=r.get("build_number"),
                                 backends=r.get("backends"), cpu_info=r.get("cpu_info"),
                                 llama_cpp_python=version, extra_args=llama_extra.split(), build_seconds=None if build_s == "null" else int(build_s))
    res = json.load(open(os.path.join(tmp, f"lmwb-{i}", "results.json")))
    for m in res["models"]:
        for t in m["standard"]:
            if t["depth"]:
                continue
            rows["lmwb"].append(dict(model=name, kind=t["kind"], test=t["test"], mean=t["tok_s"]["mean"],
                                     sd=t["tok_s"]["sd"], samples=t["samples_tok_s"],
                                     threads=m["model"]["threads"]))
    meta["lmwb"] = dict(version=res["machine"]["lmwb_version"], git_commit=res["machine"]["git_commit"],
                        schema=res["schema"])

def table(head, body, align):
    print("| " + " | ".join(head) + " |")
    print("| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |")
    for b in body:
        print("| " + " | ".join(b) + " |")
    print()

def label(model):
    return model + (" (as shipped)" if any(os.path.basename(f) == model for f in shipped) else "")

print(f"# lmwb vs llama.cpp {started} UTC\n")
print(f"{cpu_model()}, {os.cpu_count()} CPUs; {threads} threads for both engines; {reps} repetitions "
      f"after a warmup; load average {load_start} at start, {load_end} at end; "
      f"llama.cpp from llama-cpp-python=={version} (build {meta['llama.cpp'].get('build_number')}, "
      f"{meta['llama.cpp'].get('build_commit')}{', ' + llama_extra if llama_extra else ''}); lmwb {meta['lmwb']['version']} ({meta['lmwb']['git_commit']})\n")
try:
    busy = float(load_start.split()[0]) >= (os.cpu_count() or 1)
except ValueError:
    busy = False
if busy:
    print(f"**Warning**: the load average at start ({load_start.split()[0]}) is at least the number of "
          f"CPUs ({os.cpu_count()}): other processes share the cores, so these numbers are noise, "
          f"not a verdict. Run on an otherwise idle machine.\n")
for engine in ("llama.cpp", "lmwb"):
    print(f"## {engine}\n")
    table(["model", "threads", "test", "t/s"],
          [[label(r["model"]), str(r["threads"]), r["test"], f"{r['mean']:.2f} ± {r['sd']:.2f}"]
           for r in rows[engine]], "llrr")

cmp = []
for r in rows["llama.cpp"]:
    mine = next((x for x in rows["lmwb"] if x["model"] == r["model"] and x["test"] == r["test"]), None)
    if mine is None:
        continue
    ratio = mine["mean"] / r["mean"] if r["mean"] else float("nan")
    target = TARGET[r["kind"]]
    cmp.append(dict(model=r["model"], test=r["test"], llama_cpp_tok_s=r["mean"], lmwb_tok_s=mine["mean"],
                    ratio=ratio, target=target, pass_=ratio >= target))
print("## lmwb / llama.cpp\n")
table(["model", "test", "llama.cpp t/s", "lmwb t/s", "lmwb/llama.cpp", "target", "result"],
      [[label(c["model"]), c["test"], f"{c['llama_cpp_tok_s']:.2f}", f"{c['lmwb_tok_s']:.2f}",
        f"{c['ratio']:.2f}×", f"≥ {c['target']:.2f}×", "PASS" if c["pass_"] else "FAIL"] for c in cmp],
      "llrrrrl")

doc = dict(schema="lmwb.vs-llama-cpp/1", started=started,
           machine=dict(cpu=cpu_model(), logical_cpus=os.cpu_count(), os=platform.platform(),
                        load_avg_at_start=load_start, load_avg_at_end=load_end, busy_at_start=busy),
           config=dict(threads=int(threads), repetitions=int(reps), n_prompt=512, n_gen=128,
                       models=files, lmwb_git_commit=git_commit()),
           engines=meta, results=rows,
           comparison=[{**{k: v for k, v in c.items() if k != "pass_"}, "pass": c["pass_"]} for c in cmp])
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print(f"written: {os.path.relpath(out)}")
sys.exit(0 if cmp and all(c["pass_"] for c in cmp) else 1)
PY
