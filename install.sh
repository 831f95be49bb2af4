#!/bin/sh
# Installs the movim-setup binary, its shell completions (bash, zsh, fish) and man pages,
# idempotently.
#   From a release archive:  sh install.sh --archive movim-setup-x86_64-linux.tar.gz --sha256 <hex>
#     (the archive's SHA-256 is verified before anything is installed)
#   From this checkout:      sh install.sh          (builds with cargo, installing Rust's toolchain
#                                                    is up to you: https://rustup.rs)
# Options: --prefix DIR (default /usr/local when root, else ~/.local), --run (then run
# `movim-setup init`, passing any arguments after `--`).
set -eu

prefix=""
archive=""
sha256=""
run_init=0
# An option that takes a value must get one (not nothing, not the next option).
value() {
	case "${2-}" in
	"" | -*) echo "install.sh: $1 needs a value (see --help)" >&2; exit 2 ;;
	esac
}
while [ $# -gt 0 ]; do
	case "$1" in
	--prefix) value "$@"; prefix="$2"; shift 2 ;;
	--archive) value "$@"; archive="$2"; shift 2 ;;
	--sha256) value "$@"; sha256="$2"; shift 2 ;;
	--run) run_init=1; shift ;;
	--) shift; break ;;
	-h | --help) sed -n '2,10p' "$0"; exit 0 ;;
	*) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done

if [ -z "$prefix" ]; then
	if [ "$(id -u)" = 0 ]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
fi
bindir="$prefix/bin"
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -n "$archive" ]; then
	if [ -z "$sha256" ]; then
		echo "install.sh: --archive needs --sha256 (the release's published checksum)" >&2
		exit 2
	fi
	if [ ! -f "$archive" ]; then
		echo "install.sh: $archive: no such file" >&2
		exit 2
	fi
	actual=$(sha256sum "$archive" | cut -d' ' -f1)
	expected=$(printf '%s' "$sha256" | tr 'A-F' 'a-f')
	if [ "$actual" != "$expected" ]; then
		echo "install.sh: $archive has SHA-256 $actual, expected $sha256; not installing" >&2
		exit 1
	fi
	tar -xzf "$archive" -C "$tmp"
	binary=$(find "$tmp" -type f -name movim-setup | head -n 1)
	[ -n "$binary" ] || { echo "install.sh: no movim-setup binary in $archive" >&2; exit 1; }
else
	command -v cargo >/dev/null 2>&1 || {
		echo "install.sh: cargo not found; install Rust (https://rustup.rs) or pass --archive" >&2
		exit 1
	}
	cargo build --release --locked --manifest-path "$here/Cargo.toml"
	binary="$here/target/release/movim-setup"
fi

mkdir -p "$bindir"
if [ -f "$bindir/movim-setup" ] && cmp -s "$binary" "$bindir/movim-setup"; then
	echo "movim-setup is already installed at $bindir/movim-setup"
else
	install -m 0755 "$binary" "$tmp/movim-setup.new"
	mv -f "$tmp/movim-setup.new" "$bindir/movim-setup"
	echo "installed $bindir/movim-setup"
fi
# Completions and man pages come from the binary just installed, so they describe exactly it.
share="$prefix/share"
mkdir -p "$share/bash-completion/completions" "$share/zsh/site-functions" \
	"$share/fish/vendor_completions.d" "$share/man/man1"
"$bindir/movim-setup" completions bash >"$share/bash-completion/completions/movim-setup"
"$bindir/movim-setup" completions zsh >"$share/zsh/site-functions/_movim-setup"
"$bindir/movim-setup" completions fish >"$share/fish/vendor_completions.d/movim-setup.fish"
"$bindir/movim-setup" man "$share/man/man1" 2>/dev/null
echo "installed completions (bash, zsh, fish) and man pages (man movim-setup) under $share"

case ":$PATH:" in
*":$bindir:"*) ;;
*) echo "note: $bindir is not on your PATH" ;;
esac

if [ "$run_init" = 1 ]; then
	exec "$bindir/movim-setup" init "$@"
fi
