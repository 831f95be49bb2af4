// the XMPP probe (see check_xmpp in checks/xmpp.rs), run in a Movim container as `php -r` code: hence no opening tag.
$d = $argv[1];
$targets = [];
$srv = @dns_get_record('_xmpp-client._tcp.' . $d, DNS_SRV);
if (is_array($srv)) {
    usort($srv, fn ($a, $b) => $a['pri'] <=> $b['pri']);
    foreach ($srv as $r) { $targets[] = [$r['target'], (int) $r['port']]; }
}
$targets[] = [$d, 5222];
$resolved = false;
$read = function ($s, $until) {
    $buf = '';
    while (!feof($s)) {
        foreach ($until as $u) { if (str_contains($buf, $u)) { return $buf; } }
        $c = fread($s, 4096);
        if ($c === false || $c === '') { break; }
        $buf .= $c;
    }
    return $buf;
};
foreach ($targets as [$h, $p]) {
    $ip = gethostbyname($h);
    if ($ip === $h && @inet_pton($h) === false) { echo "unresolved $h\n"; continue; }
    $resolved = true;
    echo "resolved $h $ip\n";
    $s = @stream_socket_client("tcp://$ip:$p", $en, $es, 5);
    if ($s === false) { echo "noconnect $h:$p $es\n"; continue; }
    stream_set_timeout($s, 5);
    fwrite($s, "<?xml version='1.0'?><stream:stream to='$d' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
    $f = $read($s, ['</stream:features>', '</stream:stream>']);
    if (!str_contains($f, 'urn:ietf:params:xml:ns:xmpp-tls')) { echo "nostarttls $h:$p\n"; exit(3); }
    fwrite($s, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    $r = $read($s, ['<proceed', '<failure']);
    if (!str_contains($r, '<proceed')) { echo "nostarttls $h:$p\n"; exit(3); }
    stream_context_set_option($s, 'ssl', 'peer_name', $d);
    stream_context_set_option($s, 'ssl', 'verify_peer', true);
    stream_context_set_option($s, 'ssl', 'verify_peer_name', true);
    stream_context_set_option($s, 'ssl', 'capture_peer_cert', true);
    $err = '';
    set_error_handler(function ($n, $m) use (&$err) { $err .= $m . ' '; return true; });
    $ok = stream_socket_enable_crypto($s, true, STREAM_CRYPTO_METHOD_TLS_CLIENT);
    restore_error_handler();
    if ($ok !== true) { echo "badcert $h:$p " . trim(preg_replace('/\s+/', ' ', $err)) . "\n"; exit(4); }
    $cert = stream_context_get_params($s)['options']['ssl']['peer_certificate'] ?? null;
    $info = $cert ? openssl_x509_parse($cert) : null;
    echo "tls $h:$p " . ($info['validTo_time_t'] ?? 0) . "\n";
    exit(0);
}
exit($resolved ? 2 : 1);
