#!/usr/bin/env bash
# make deb: the Debian packages drover (server + CLI) and drover-agent, built from the
# binaries in BUILD_DIR (stripped) and packaging/. Writes OUT_DIR/drover_<v>_<arch>.deb and
# OUT_DIR/drover-agent_<v>_<arch>.deb. Usage: scripts/build-deb.sh [BUILD_DIR [OUT_DIR]]
set -euo pipefail
umask 022
build=$(realpath "${1:-build}")
out=${2:-$build/deb}
mkdir -p "$out"
out=$(realpath "$out")
cd "$(dirname "$0")/.."
version=$(sed -n 's/^project(drover VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
arch=$(dpkg --print-architecture)
maintainer="Drover authors <drover@example.com>"
# Reproducible: every time in the packages (file times, the man pages' dates, the archive
# members) is the changelog's latest entry, so the same sources give the same bytes.
SOURCE_DATE_EPOCH=$(date -d "$(sed -n 's/^ -- .*>  //p' packaging/changelog | head -1)" +%s)
export SOURCE_DATE_EPOCH
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Installs FILE at PATH inside the package root with MODE.
put() { install -D -m "$3" "$1" "$root/$2"; }

# The package's files, control file with its shared-library dependencies, md5sums.
package() {
  local name=$1 binary=$2 summary=$3 description=$4
  root=$work/$name
  mkdir -p "$root/DEBIAN"
  install -D -m 0755 "$build/src/app/$binary" "$root/usr/bin/$binary"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/$binary"
  put packaging/copyright "usr/share/doc/$name/copyright" 0644
  gzip -9n < packaging/changelog > "$work/changelog.gz"
  put "$work/changelog.gz" "usr/share/doc/$name/changelog.gz" 0644
  mkdir -p "$root/usr/share/man/man1"
  help2man --no-info --version-string="$version" --name="$summary" \
    "$build/src/app/$binary" | gzip -9n > "$root/usr/share/man/man1/$binary.1.gz"
  chmod 0644 "$root/usr/share/man/man1/$binary.1.gz"
  # dpkg-shlibdeps reads debian/control from where it runs.
  mkdir -p "$work/shlibs-$name/debian"
  printf 'Source: drover\n\nPackage: %s\nArchitecture: any\n' "$name" \
    > "$work/shlibs-$name/debian/control"
  local depends
  depends=$(cd "$work/shlibs-$name" && dpkg-shlibdeps -O "$root/usr/bin/$binary" |
            sed -n 's/^shlibs:Depends=//p')
  [[ -n $depends ]] || { echo "build-deb: no shared-library dependencies found for $binary" >&2; exit 1; }
  summary_of[$name]=$summary
  description_of[$name]=$description
  depends_of[$name]=$depends
}

# After every file is in place: the maintainer scripts, the control file (with the
# installed size in KiB, from the files' bytes so that it does not depend on the file
# system built on), md5sums (of every file but the conffiles, as dh_md5sums), and the .deb.
finish() {
  local name=$1 extra_depends=${2:-}
  local script size
  for script in postinst prerm postrm; do
    install -m 0755 "packaging/$name.$script" "$root/DEBIAN/$script"
  done
  size=$(find "$root" -path "$root/DEBIAN" -prune -o -type f -printf '%s\n' |
         awk '{ kib += int(($1 + 1023) / 1024) } END { print kib + 0 }')
  {
    echo "Package: $name"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: $maintainer"
    echo "Installed-Size: $size"
    echo "Depends: ${depends_of[$name]}${extra_depends:+, $extra_depends}"
    echo "Section: admin"
    echo "Priority: optional"
    echo "Homepage: https://drover.example.com"
    echo "Description: ${summary_of[$name]}"
    echo "${description_of[$name]}" | sed 's/^/ /'
  } > "$root/DEBIAN/control"
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
     grep -vxF -f <(sed 's|^/||' DEBIAN/conffiles) | xargs -d '\n' md5sum > DEBIAN/md5sums)
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums" "$root/DEBIAN/conffiles"
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${name}_${version}_${arch}.deb" >/dev/null
}

declare -A summary_of description_of depends_of

package drover drover "fleet update control plane and its command line" \
"Drover rolls updates out to fleets of connected devices in stratified stages,
inside each site's maintenance windows, with statistical health gates and
automatic rollback. This package holds drover: the server (drover serve, run
by drover.service as the system user drover, data in /var/lib/drover), the
operator CLI and the digital twin (drover sim, drover demo)."
put packaging/drover.service lib/systemd/system/drover.service 0644
put packaging/drover.default etc/default/drover 0644
put packaging/drover.sysusers usr/lib/sysusers.d/drover.conf 0644
echo /etc/default/drover > "$root/DEBIAN/conffiles"
# The postinst makes the system user with systemd-sysusers (or a package providing it).
finish drover "systemd | systemd-standalone-sysusers | opensysusers"

package drover-agent drover-agent "fleet update agent for a device" \
"The device side of Drover: drover-agent enrolls the device with its own key,
checks in with the server, and carries each offered update through download,
verification, installation, a trial boot and health checks, rolling back by
itself when any of them fails. Run by drover-agent.service; its configuration
is /etc/drover/agent.json, its state /var/lib/drover-agent."
put packaging/drover-agent.service lib/systemd/system/drover-agent.service 0644
put packaging/agent.json etc/drover/agent.json 0644
install -d -m 0755 "$root/var/lib/drover-agent"
echo /etc/drover/agent.json > "$root/DEBIAN/conffiles"
finish drover-agent

ls -l "$out"/*.deb
