-- Written by movim-setup: Prosody configured for Movim. Movim needs PEP with
-- persistent multi-item nodes, a pubsub component, MAM, XEP-0402 bookmarks, HTTP upload, a MUC
-- service, external service discovery and in-band registration (for password changes).

admins = { }
pidfile = "/var/run/prosody/prosody.pid"
log = { { levels = { min = "info" }, to = "console" } }

modules_enabled = {
	"roster"; "saslauth"; "tls"; "dialback"; "disco"; "carbons"; "pep"; "private"; "blocklist";
	"vcard4"; "vcard_legacy"; "version"; "uptime"; "time"; "ping"; "register"; "mam"; "csi_simple";
	"bookmarks"; "smacks"; "external_services"; "http_files"; "admin_adhoc";
}

allow_registration = false
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = true
authentication = "internal_hashed"
storage = "internal"

-- PEP and pubsub nodes with many items (Movim keeps posts and bookmarks there).
pep_max_items = 10000
archive_expires_after = "1y"
default_archive_policy = true

certificates = "/etc/prosody/certs"

external_services = {
	{ type = "stun"; transport = "udp"; host = "{{xmpp_domain}}"; port = 3478 };
}

VirtualHost "{{xmpp_domain}}"

Component "pubsub.{{xmpp_domain}}" "pubsub"
	pubsub_max_items = 10000
	expose_publisher = true

Component "conference.{{xmpp_domain}}" "muc"
	modules_enabled = { "muc_mam" }

Component "upload.{{xmpp_domain}}" "http_file_share"
	http_file_share_size_limit = 10485760
