#!/usr/bin/env bash
# Lays out Causeway as a package would: the binary, the systemd units, the
# system user, the configuration and the sample templates.
#
#   deploy/install.sh [--destdir DIR] [--bin PATH] [--nodes p1,p2,p3]
#
# --destdir stages everything under DIR (for building a package: no user is
# created, systemd is not told). Without it the files go to the live system,
# the causeway user is created when missing and systemd reloads its units.
# Existing configuration is never overwritten: the shipped example is put
# beside it as causeway.yaml.dist. Re-running it is safe.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
destdir=""
bin="$root/bin/causeway"
nodes="p1,p2,p3"

die() { echo "install: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case "$1" in
	--destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
	--bin) bin=${2:?--bin needs a path}; shift 2 ;;
	--nodes) nodes=${2:?--nodes needs a list}; shift 2 ;;
	-h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done

# The node names are checked before anything is installed: each names a
# file (processor-<node>.yaml), a data directory and a unit instance
# (causeway-processor@<node>), so it must be a name fit for all three (a
# letter or digit, then letters, digits, ".", "_" or "-"), and given once.
usage() { echo "install: $*" >&2; exit 2; }
case ",$nodes," in
*,,*) usage "--nodes $nodes: a node name is empty" ;;
esac
IFS=, read -r -a node_list <<<"$nodes"
[ "${#node_list[@]}" -le 9 ] || usage "--nodes $nodes: at most 9 nodes (ports 7101-7109)"
# Spelt out, not as ranges, which a locale may stretch to other letters.
alnum=abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789
seen=,
for node in "${node_list[@]}"; do
	rest=${node#[$alnum]}
	if [ "$rest" = "$node" ] || [ -n "${rest//[$alnum._-]/}" ]; then
		usage "--nodes $nodes: \"$node\" is no node name: a letter or digit, then letters, digits, \".\", \"_\" or \"-\""
	fi
	case $seen in
	*",$node,"*) usage "--nodes $nodes: \"$node\" is given twice" ;;
	esac
	seen+="$node,"
done

[ -x "$bin" ] || die "$bin is not an executable (make build first)"
if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
	die "installing onto the system needs root (or stage it with --destdir)"
fi

etc="$destdir/etc/causeway"
unitdir="$destdir/lib/systemd/system"
owner=()
# On the live system the configuration is readable by the service user only.
if [ -z "$destdir" ]; then
	owner=(-o root -g causeway)
fi

ensure_user() {
	if getent passwd causeway >/dev/null; then
		return
	fi
	if command -v systemd-sysusers >/dev/null && [ -d /run/systemd/system ]; then
		systemd-sysusers /usr/lib/sysusers.d/causeway.conf
	else
		useradd --system --user-group --home-dir /var/lib/causeway --no-create-home \
			--shell /usr/sbin/nologin --comment "Causeway root-cause analysis" causeway
	fi
}

# install_config SRC DST: a new file, or SRC beside an existing one.
install_config() {
	local src=$1 dst=$2
	if [ -e "$dst" ] && ! cmp -s "$src" "$dst"; then
		install -m 0640 "${owner[@]}" "$src" "$dst.dist"
		echo "kept $dst (the shipped version is $dst.dist)"
		return
	fi
	install -m 0640 "${owner[@]}" "$src" "$dst"
}

install -d -m 0755 "$destdir/usr/bin" "$unitdir" "$destdir/usr/lib/sysusers.d" \
	"$destdir/usr/lib/tmpfiles.d" "$destdir/usr/share/doc/causeway"
install -m 0755 "$bin" "$destdir/usr/bin/causeway"
install -m 0644 "$here"/systemd/*.service "$here"/systemd/*.target "$unitdir/"
cat >"$destdir/usr/lib/sysusers.d/causeway.conf" <<'EOF'
# The user every Causeway service runs as (see the units' User=).
u causeway - "Causeway root-cause analysis" /var/lib/causeway /usr/sbin/nologin
EOF
cat >"$destdir/usr/lib/tmpfiles.d/causeway.conf" <<'EOF'
# Configuration and secrets readable by the causeway group only.
d /etc/causeway 0750 root causeway -
d /etc/causeway/secrets 0750 root causeway -
EOF
chmod 0644 "$destdir/usr/lib/sysusers.d/causeway.conf" "$destdir/usr/lib/tmpfiles.d/causeway.conf"
install -m 0644 "$root/README.md" "$destdir/usr/share/doc/causeway/README.md"

if [ -z "$destdir" ]; then
	ensure_user
fi
# secrets/ holds one file a secret, each 0640 root:causeway: the services'
# user reads them (the *_file keys name them), no one else. static/ is the
# static driver's directory (drivers.static.directory), empty until the
# operator puts the topology there.
install -d -m 0750 "${owner[@]}" "$etc" "$etc/secrets" "$etc/templates" "$etc/static"
install_config "$here/causeway.yaml" "$etc/causeway.yaml"
for f in "$here"/templates/*.yaml; do
	install_config "$f" "$etc/templates/$(basename "$f")"
done
# One file per processor node (the unit reads processor-<node>.yaml): an
# overlay of causeway.yaml (its `base`) holding only what differs for that
# node, its id, data directory, raft/API ports and the bootstrap peers
# (node i on raft port 7100+i and API port 8080+i), so that an edit of
# causeway.yaml reaches every node.
peers=""
i=0
for node in "${node_list[@]}"; do
	i=$((i + 1))
	peers+="      - {id: $node, address: \"127.0.0.1:710$i\"}"$'\n'
done
i=0
for node in "${node_list[@]}"; do
	i=$((i + 1))
	tmp=$(mktemp)
	cat >"$tmp" <<EOF
# Processor $node: laid over causeway.yaml (base), which holds everything
# else; an edit there reaches this node at its next start.
base: causeway.yaml
processor:
  node_id: $node
  data_dir: /var/lib/causeway/processor-$node
  raft:
    bind_addr: "127.0.0.1:710$i"
    advertise_addr: "127.0.0.1:710$i"
    peers:
$peers  api:
    listen: "127.0.0.1:808$i"
EOF
	install_config "$tmp" "$etc/processor-$node.yaml"
	rm -f "$tmp"
done

if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
fi
# Each file and unit named in full: a brace list of one node is no
# expansion, and sh expands none.
files="" units=""
for node in "${node_list[@]}"; do
	files+=" processor-$node.yaml"
	units+=" causeway-processor@$node"
done
cat <<EOF
installed under ${destdir:-/}:
  /usr/bin/causeway, units in /lib/systemd/system (causeway.target),
  /etc/causeway/causeway.yaml,$files, templates/, secrets/
next: put the secrets the configuration names under /etc/causeway/secrets, one
  a file, owned root:causeway, mode 0640 (install -m 0640 -o root -g causeway), run
  causeway check-config -c /etc/causeway/causeway.yaml
  causeway migrate -c /etc/causeway/causeway.yaml
  systemctl enable --now causeway.target$units
EOF
