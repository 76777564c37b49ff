#!/usr/bin/env bash
# make deb, checked: both packages build from this build's binaries, the same bytes twice
# (reproducible), lintian finds nothing (errors, warnings), and they install with dpkg into a scratch root with exactly the files
# expected, their conffiles registered, and remove cleanly (conffiles kept until a purge).
# Usage: deb_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$src/scripts/build-deb.sh" "$build" "$work/deb"
debs=("$work"/deb/drover_*.deb "$work"/deb/drover-agent_*.deb)
for d in "${debs[@]}"; do [[ -f $d ]] || fail "no package $d"; done
# Reproducible: built again, byte for byte the same.
"$src/scripts/build-deb.sh" "$build" "$work/again" > /dev/null
for d in "${debs[@]}"; do
  cmp -s "$d" "$work/again/$(basename "$d")" || fail "$(basename "$d") differs when built again"
done
# The maintainer scripts are in the packages, executable.
for p in drover drover-agent; do
  listing=$(dpkg-deb --ctrl-tarfile "$work"/deb/${p}_*.deb | tar -tvf -)
  for script in postinst prerm postrm; do
    grep -q "^-rwxr-xr-x .* ./$script\$" <<< "$listing" || fail "$p has no executable $script"
  done
done

# Lintian: not one error or warning.
lintian --fail-on error,warning --allow-root "${debs[@]}" || fail "lintian"

root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
# The scratch root has no libc6 and friends in its database: only the packages' own
# dependencies are missing, which --force-depends accepts; their scripts run outside the root
# with DPKG_ROOT set.
dpkg --root="$root" --log=/dev/null --force-script-chrootless --force-depends -i "${debs[@]}" \
  > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
for p in drover drover-agent; do
  status=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' "$p")
  [[ $status == "install ok installed" ]] || fail "$p: $status"
done

files() { dpkg-query --admindir="$root/var/lib/dpkg" -L "$1" | grep -v '^/\.$' | sort | tr '\n' ' '; }
want_agent="/etc /etc/drover /etc/drover/agent.json /lib /lib/systemd /lib/systemd/system \
/lib/systemd/system/drover-agent.service /usr /usr/bin /usr/bin/drover-agent /usr/share \
/usr/share/doc /usr/share/doc/drover-agent /usr/share/doc/drover-agent/changelog.gz \
/usr/share/doc/drover-agent/copyright /usr/share/man /usr/share/man/man1 \
/usr/share/man/man1/drover-agent.1.gz /var /var/lib /var/lib/drover-agent "
want_server="/etc /etc/default /etc/default/drover /lib /lib/systemd /lib/systemd/system \
/lib/systemd/system/drover.service /usr /usr/bin /usr/bin/drover /usr/lib /usr/lib/sysusers.d \
/usr/lib/sysusers.d/drover.conf /usr/share /usr/share/doc /usr/share/doc/drover \
/usr/share/doc/drover/changelog.gz /usr/share/doc/drover/copyright /usr/share/man \
/usr/share/man/man1 /usr/share/man/man1/drover.1.gz "
[[ $(files drover-agent) == "$want_agent" ]] || fail "drover-agent files: $(files drover-agent)"
[[ $(files drover) == "$want_server" ]] || fail "drover files: $(files drover)"
grep -qx "/etc/drover/agent.json" "$root/var/lib/dpkg/info/drover-agent.conffiles" ||
  fail "agent.json is not a conffile"
grep -qx "/etc/default/drover" "$root/var/lib/dpkg/info/drover.conffiles" ||
  fail "/etc/default/drover is not a conffile"

# What was installed runs, and the default agent configuration is one the agent reads.
"$root/usr/bin/drover" --version | grep -q '^drover ' || fail "drover --version"
"$root/usr/bin/drover-agent" --version | grep -q '^drover-agent ' || fail "drover-agent --version"
zcat "$root/usr/share/man/man1/drover.1.gz" | grep -q '^\.TH DROVER' || fail "drover.1"
# The units name the binaries installed.
grep -qx 'ExecStart=/usr/bin/drover-agent --config /etc/drover/agent.json' \
  "$root/lib/systemd/system/drover-agent.service" || fail "the agent unit's ExecStart"
grep -q '^ExecStart=/usr/bin/drover serve --data /var/lib/drover ' \
  "$root/lib/systemd/system/drover.service" || fail "the server unit's ExecStart"
# The postinst made the system user where systemd-sysusers exists to make it.
if command -v systemd-sysusers > /dev/null; then
  grep -q '^drover:' "$root/etc/passwd" || fail "no user drover in the scratch root"
fi

# Removed: the files go, the conffiles and the device's state stay until a purge.
echo "a device key" > "$root/var/lib/drover-agent/device.key"
dpkg --root="$root" --log=/dev/null --force-script-chrootless -r drover-agent drover \
  > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -r"; }
[[ ! -e $root/usr/bin/drover-agent && ! -e $root/usr/bin/drover ]] || fail "binaries left"
[[ -f $root/etc/drover/agent.json ]] || fail "agent.json removed before a purge"
[[ -f $root/var/lib/drover-agent/device.key ]] || fail "the agent's state removed before a purge"
dpkg --root="$root" --log=/dev/null --force-script-chrootless -P drover-agent drover \
  > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -P"; }
[[ ! -e $root/etc/drover/agent.json ]] || fail "agent.json left after a purge"
[[ ! -e $root/etc/default/drover ]] || fail "/etc/default/drover left after a purge"
[[ ! -e $root/var/lib/drover-agent ]] || fail "the agent's state left after a purge"
echo "deb_test: both packages built, passed lintian, installed, removed and purged"
