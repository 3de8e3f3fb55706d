#!/bin/sh
# version.sh: print the Debian version of the commit checked out in the
# current directory, from git describe (mkdeb.sh uses it; VERSION there
# overrides it).
#   tag vX.Y.Z at HEAD          X.Y.Z
#   N commits after vX.Y.Z      X.Y.Z+gitN.<hash>
#   no tag                      0.0~gitN.<YYYYMMDD>.<hash>
# N = git rev-list --count HEAD: versions rise with every commit on a linear
# branch (dpkg compares N numerically, before the date and the hash), and
# "~" sorts below any first tag 0.x. A "-" in a tag (v1.0.0-rc1) becomes "~"
# (a pre-release sorts before the release). The date is the commit's (UTC).
# A working tree with uncommitted changes to tracked files adds "+dirty".
set -eu

hash=$(git rev-parse --short=12 HEAD)
if d=$(git describe --tags --long --abbrev=12 --match 'v[0-9]*' 2>/dev/null); then
	n=${d%-g*}; n=${n##*-}
	tag=${d%-*-g*}; tag=$(printf '%s' "${tag#v}" | tr -- - '~')
	if [ "$n" = 0 ]; then version=$tag; else version="$tag+git$n.$hash"; fi
else
	n=$(git rev-list --count HEAD)
	day=$(date -u -d "@$(git log -1 --format=%ct)" +%Y%m%d)
	version="0.0~git$n.$day.$hash"
fi
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	version="$version+dirty"
fi
printf '%s\n' "$version"
