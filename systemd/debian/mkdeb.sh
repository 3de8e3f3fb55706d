#!/bin/sh
# mkdeb.sh OUTDIR: build the binary package openrpcbind from the checked-out
# commit into OUTDIR/openrpcbind_<version>_<arch>.deb, removing any other
# OUTDIR/openrpcbind_*.deb first (make deb leaves exactly one).
#
# Tool: dpkg-deb --root-owner-group --build over a staged tree. dpkg-deb is on
# every Debian machine and is what debhelper itself ends with; a packager such
# as nfpm would be a new build dependency to download and trust, for a package
# of a dozen files.
#
# Reproducible: the same commit gives the same bytes. SOURCE_DATE_EPOCH is the
# commit time (git log -1 --format=%ct); every staged mtime is set to it
# (dpkg-deb also uses it for the ar member times), owners are root:root, modes
# are set explicitly (no umask), gzip runs with -n, Go builds with -trimpath,
# -buildvcs=false and CGO_ENABLED=0, xz runs single-threaded (its output is
# then independent of the number of CPUs), and dpkg-deb sorts the members.
#
# Version: version.sh (from git describe); VERSION= overrides it.
set -eu

out=${1:?usage: mkdeb.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

GO=${GO:-go}
pkg=openrpcbind

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
fi
export SOURCE_DATE_EPOCH

version=${VERSION:-}
[ -n "$version" ] || version=$("$here/version.sh")
case $version in
[0-9]*) ;;
*) echo "mkdeb.sh: version '$version' must start with a digit" >&2; exit 1 ;;
esac
dpkg --validate-version "$version" || { echo "mkdeb.sh: bad version '$version'" >&2; exit 1; }

arch=$(dpkg --print-architecture)
case $arch in
amd64 | arm64 | riscv64 | s390x) goarch=$arch ;;
i386) goarch=386 ;;
armhf) goarch=arm; export GOARM=7 ;;
armel) goarch=arm; export GOARM=5 ;;
ppc64el) goarch=ppc64le ;;
*) echo "mkdeb.sh: architecture $arch not supported" >&2; exit 1 ;;
esac

stage=$(mktemp -d "${TMPDIR:-/tmp}/openrpcbind-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
umask 022

# Paths as Debian's rpcbind spells them (dpkg -L rpcbind): a file that dpkg
# sees under another spelling (/usr/sbin/rpcbind for /sbin/rpcbind) is deleted
# when dpkg removes the replaced package on merged-/usr (DEP 17).
mkdir -p "$root/DEBIAN" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" \
	"$root/lib/systemd/system" "$root/usr/lib/tmpfiles.d" "$root/usr/lib/sysusers.d" \
	"$root/usr/share/man/man8" "$root/etc/default" "$root/usr/share/doc/$pkg" \
	"$root/usr/share/lintian/overrides"

ldflags="-s -w -buildid= -X main.version=$version"
CGO_ENABLED=0 GOOS=linux GOARCH=$goarch "$GO" build -trimpath -buildvcs=false -ldflags "$ldflags" \
	-o "$root/sbin/rpcbind" ./cmd/rpcbind
CGO_ENABLED=0 GOOS=linux GOARCH=$goarch "$GO" build -trimpath -buildvcs=false -ldflags "$ldflags" \
	-o "$root/usr/bin/rpcinfo" ./cmd/rpcinfo
ln -s ../bin/rpcinfo "$root/usr/sbin/rpcinfo"

install -m 0644 systemd/rpcbind.service systemd/rpcbind.socket "$root/lib/systemd/system/"
ln -s rpcbind.service "$root/lib/systemd/system/portmap.service"
install -m 0644 systemd/rpcbind.tmpfiles "$root/usr/lib/tmpfiles.d/rpcbind.conf"
install -m 0644 systemd/rpcbind.sysusers "$root/usr/lib/sysusers.d/rpcbind.conf"
gzip -9nc cmd/rpcbind/rpcbind.8 >"$root/usr/share/man/man8/rpcbind.8.gz"
gzip -9nc cmd/rpcinfo/rpcinfo.8 >"$root/usr/share/man/man8/rpcinfo.8.gz"
install -m 0644 "$here/default" "$root/etc/default/rpcbind"
install -m 0644 "$here/copyright" "$root/usr/share/doc/$pkg/copyright"
install -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/$pkg"

# A one-entry changelog naming this version and commit (a native package:
# lintian wants changelog.gz).
{
	printf '%s (%s) unstable; urgency=medium\n\n' "$pkg" "$version"
	printf '  * Built from commit %s.\n\n' "$(git rev-parse HEAD)"
	printf ' -- %s  %s\n' "$(sed -n 's/^Maintainer: //p' "$here/control.in")" \
		"$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$root/usr/share/doc/$pkg/changelog.gz"
chmod 0644 "$root/usr/share/doc/$pkg/changelog.gz" "$root"/usr/share/man/man8/*.gz

for f in postinst prerm postrm; do
	install -m 0755 "$here/$f" "$root/DEBIAN/$f"
done
install -m 0644 "$here/conffiles" "$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | LC_ALL=C sort |
	sed 's|^\./||' | xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
size=$(du -k -s --apparent-size --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	"$here/control.in" >"$root/DEBIAN/control"

find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
rm -f "$out/${pkg}"_*.deb
deb="$out/${pkg}_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --threads-max=1 --build "$root" "$deb" >/dev/null
echo "$deb"
