-- Default configuration of the test world's Prosody image: it starts and serves localhost.
-- Deployments mount their own file at /etc/prosody/prosody.cfg.lua.
admins = { }

-- Debian installs the community modules (prosody-modules) beside the core ones in
-- /usr/lib/prosody/modules, so they load by name without plugin_paths.
modules_enabled = {
	"roster"; "saslauth"; "tls"; "dialback"; "disco"; "carbons"; "pep"; "private";
	"blocklist"; "vcard4"; "vcard_legacy"; "bookmarks"; "version"; "uptime"; "time";
	"ping"; "register"; "mam"; "csi_simple"; "smacks";
}

interfaces = { "*" }
pidfile = "/var/run/prosody/prosody.pid"
data_path = "/var/lib/prosody"
allow_registration = false
c2s_require_encryption = false
s2s_secure_auth = false
authentication = "internal_hashed"
storage = "internal"
archive_expires_after = "1w"

log = {
	{ levels = { min = "info" }, to = "console" };
}

certificates = "certs"

VirtualHost "localhost"

Include "conf.d/*.cfg.lua"
