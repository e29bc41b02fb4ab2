#!/bin/sh
# Installs the Debian 12 packages anoswin needs, skipping those already there.
#   scripts/install-deps.sh          build + run (what `make demo` needs)
#   scripts/install-deps.sh --test   also the reference stack the tests compare against
#   scripts/install-deps.sh --fuzz   also clang + libFuzzer for `make fuzz`
set -eu

run_pkgs="build-essential cmake pkg-config libopenblas-dev libnifti2-dev zlib1g-dev libpng-dev mricron-data
libopenmpi-dev openmpi-bin"
test_pkgs="python3 python3-numpy python3-scipy python3-sklearn python3-nibabel python3-torch python3-pynndescent chromium elastix"

pkgs=$run_pkgs
fuzz_pkgs="clang libclang-rt-14-dev libomp-dev"
[ "${1:-}" = "--test" ] && pkgs="$pkgs $test_pkgs"
[ "${1:-}" = "--fuzz" ] && pkgs="$pkgs $fuzz_pkgs"

missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
  exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
