#!/usr/bin/env bash
# Build llama.cpp's `llama-server` from the sources vendored in the pinned llama-cpp-python
# sdist, so the remote-engine tests run against exactly the llama.cpp the in-process engine
# uses, with no prebuilt binary downloaded. The binary is cached outside the clone, keyed by
# the version: a second run prints the cached path at once.
#
# Usage: scripts/build_llama_server.sh            prints the binary's path on stdout
#   env: LOCALTOOLS_CACHE  cache root (default ~/.cache/localtools)
#        PYTHON            interpreter whose pip downloads the sdist (default python3)
#        JOBS              parallel compile jobs (default: number of CPUs)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
version=$(sed -n 's/.*"llama-cpp-python==\([0-9][0-9a-z.]*\)".*/\1/p' "$root/pyproject.toml" | head -n1)
if [ -z "$version" ]; then
    echo "build_llama_server: no pinned llama-cpp-python==VERSION in pyproject.toml" >&2
    exit 2
fi
cache="${LOCALTOOLS_CACHE:-$HOME/.cache/localtools}"
dest="$cache/llama-server-$version"
binary="$dest/llama-server"
if [ -x "$binary" ]; then
    echo "$binary"
    exit 0
fi

log() { echo "build_llama_server: $*" >&2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/llama-server-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "downloading the llama-cpp-python $version sdist"
"${PYTHON:-python3}" -m pip download --quiet --no-binary :all: --no-deps \
    --dest "$work" "llama-cpp-python==$version" >&2
sdist=$(ls "$work"/llama_cpp_python-*.tar.gz)
tar -xzf "$sdist" -C "$work"
src=$(ls -d "$work"/llama_cpp_python-*/vendor/llama.cpp)

# Some virtual machines report Intel AMX, yet llama.cpp's AMX kernels die there with an
# illegal instruction: build without it wherever the CPU reports it (as .ci/run does for
# llama-cpp-python). GCC honours an explicit -mno-* over -march=native in either order.
flags=""
if grep -qw amx_tile /proc/cpuinfo 2>/dev/null; then
    flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    log "CPU reports AMX: building with $flags"
fi

log "configuring (Release, CPU only, no CURL)"
cmake -S "$src" -B "$work/build" -G "$(command -v ninja >/dev/null && echo Ninja || echo 'Unix Makefiles')" \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
    -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_HIP=OFF -DGGML_OPENMP=OFF \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" >&2
log "building the llama-server target"
cmake --build "$work/build" --target llama-server -j "${JOBS:-$(nproc)}" >&2

mkdir -p "$dest"
install -m 0755 "$work/build/bin/llama-server" "$binary.tmp"
mv "$binary.tmp" "$binary"   # atomic: a concurrent run never sees half a binary
log "built $binary"
echo "$binary"
