#!/bin/bash
# Installs one NVIDIA server driver branch so that it loads on the running kernel. Canonical's prebuilt,
# signed modules for this very kernel first (linux-modules-nvidia-<branch>-server[-open]-<uname -r>, with
# the userspace that needs no DKMS); only when none exist, DKMS against linux-headers-<uname -r>, which
# must be named: --no-install-recommends skips the headers dkms only recommends (audit D3).
# Fabric Manager (NVSwitch boards) must be the driver's exact version, or it refuses to start: the one
# matching the installed driver is installed and both are held (NVIDIA/gpu-driver-container#735).
#
# Usage: install-driver.sh BRANCH FLAVOUR FABRIC_MANAGER
#   BRANCH: e.g. 570; FLAVOUR: open (Turing and newer) or proprietary (Volta: V100); FABRIC_MANAGER: true|false
set -euo pipefail

if [ "$#" -ne 3 ]; then
  echo "usage: $0 BRANCH open|proprietary true|false" >&2
  exit 2
fi
branch=$1
flavour=$2
fabric=$3
case "$flavour" in
  open) suffix=-open ;;
  proprietary) suffix= ;;
  *) echo "FLAVOUR must be open or proprietary, not $flavour" >&2; exit 2 ;;
esac
kernel=$(uname -r)
apt_install() { apt-get install -y --no-install-recommends "$@"; }

utils="nvidia-utils-${branch}-server"
modules="linux-modules-nvidia-${branch}-server${suffix}-${kernel}"
if apt-cache show "$modules" >/dev/null 2>&1; then
  echo "driver: prebuilt modules $modules (no DKMS build)"
  driver="nvidia-headless-no-dkms-${branch}-server${suffix}"
  apt_install "$modules" "$driver" "$utils"
else
  echo "driver: no prebuilt modules for kernel $kernel; building with DKMS against linux-headers-$kernel"
  driver="nvidia-headless-${branch}-server${suffix}"
  apt_install "linux-headers-$kernel" "nvidia-dkms-${branch}-server${suffix}" "$driver" "$utils"
fi
held=("$driver" "$utils")

if [ "$fabric" = true ]; then
  installed=$(dpkg-query -W -f='${Version}' "$driver")
  upstream=${installed%%-*}
  manager="nvidia-fabricmanager-${branch}"
  candidate=$(apt-cache madison "$manager" | awk -v want="$upstream" '{ v = $3; sub(/-.*/, "", v); if (v == want) { print $3; exit } }')
  if [ -z "$candidate" ]; then
    echo "no $manager of driver version $upstream in the archive; Fabric Manager would refuse a mismatch" >&2
    exit 1
  fi
  echo "fabric manager: $manager=$candidate for driver $installed"
  apt_install "$manager=$candidate"
  held+=("$manager")
fi
# An unattended upgrade of one without the other breaks the pair (and the running modules).
apt-mark hold "${held[@]}"
echo "driver: installed and held: ${held[*]}"
