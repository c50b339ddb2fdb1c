#!/usr/bin/env bash
# Installs the lazyrt C library the way cargo-c lays it out:
#   $libdir/liblazyrt.so.0.1.0, liblazyrt.so.0.1 -> it (the SONAME: the
#   major version, or 0.MINOR while it is 0), liblazyrt.so -> it,
#   $libdir/liblazyrt.a, $includedir/lazyrt.h, $libdir/pkgconfig/lazyrt.pc
#
# Build first:  cargo build --release -p lazyrt-capi
# Then:         capi/install.sh --prefix /usr/local
#
# Options:
#   --prefix DIR      install prefix (default /usr/local)
#   --libdir DIR      default PREFIX/lib
#   --includedir DIR  default PREFIX/include
#   --from DIR        where liblazyrt_capi.{so,a} were built
#                     (default: the workspace's target/release)
#   --destdir DIR     staging root prepended to every path (packaging)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
prefix=/usr/local
libdir=""
includedir=""
from="${CARGO_TARGET_DIR:-$root/target}/release"
destdir=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --libdir) libdir=$2; shift 2 ;;
        --includedir) includedir=$2; shift 2 ;;
        --from) from=$2; shift 2 ;;
        --destdir) destdir=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
libdir=${libdir:-$prefix/lib}
includedir=${includedir:-$prefix/include}

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml")
major=${version%%.*}
minor=${version#*.}; minor=${minor%%.*}
if [[ $major == 0 ]]; then abi="0.$minor"; else abi=$major; fi
for built in "$from/liblazyrt_capi.so" "$from/liblazyrt_capi.a"; do
    if [[ ! -f $built ]]; then
        echo "install.sh: $built is missing: build it with 'cargo build --release -p lazyrt-capi' (or pass --from)" >&2
        exit 1
    fi
done

install -d "$destdir$libdir/pkgconfig" "$destdir$includedir"
install -m 755 "$from/liblazyrt_capi.so" "$destdir$libdir/liblazyrt.so.$version"
ln -sf "liblazyrt.so.$version" "$destdir$libdir/liblazyrt.so.$abi"
ln -sf "liblazyrt.so.$version" "$destdir$libdir/liblazyrt.so"
install -m 644 "$from/liblazyrt_capi.a" "$destdir$libdir/liblazyrt.a"
install -m 644 "$here/include/lazyrt.h" "$destdir$includedir/lazyrt.h"
sed -e "s|@PREFIX@|$prefix|; s|@LIBDIR@|$libdir|; s|@INCLUDEDIR@|$includedir|; s|@VERSION@|$version|" \
    "$here/lazyrt.pc.in" > "$destdir$libdir/pkgconfig/lazyrt.pc"
echo "installed lazyrt $version: $destdir$libdir/liblazyrt.{so,a}, $destdir$includedir/lazyrt.h, $destdir$libdir/pkgconfig/lazyrt.pc"
