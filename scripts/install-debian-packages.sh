#!/usr/bin/env bash
# Installs the Debian packages the test suite's real servers need (scripts/debian-packages.txt).
# As root it installs what is missing; otherwise it names the missing packages and how to get them.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' scripts/debian-packages.txt | grep -v '^$')
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages for the integration tests: ${missing[*]}" >&2
  echo "install them with: sudo bash scripts/install-debian-packages.sh" >&2
  echo "(without them those tests skip; under CI=true they fail)" >&2
  exit 0
fi
echo "installing Debian packages: ${missing[*]}"
echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
echo "postfix postfix/mailname string mail.test" | debconf-set-selections
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
