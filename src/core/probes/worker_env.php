// The session worker's view of its settings (prepended to a probe run by `as_session_worker`): the
// daemon starts each worker with an environment of its own and no php.ini, and the worker then
// loads only /var/www/movim/.env, immutably (keys it was given win) and with putenv, so that
// OpenSSL and everything else see the file's values (Movim's Bootstrap::setConstants).
$movimEnv = [];
foreach (@file('/var/www/movim/.env', FILE_IGNORE_NEW_LINES) ?: [] as $line) {
    if (!preg_match('/^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/', $line, $m)) { continue; }
    $v = $m[2];
    if (strlen($v) >= 2 && $v[0] === "'" && substr($v, -1) === "'") {
        $v = substr($v, 1, -1);
    } elseif (strlen($v) >= 2 && $v[0] === '"' && substr($v, -1) === '"') {
        $v = strtr(substr($v, 1, -1), ['\\\\' => '\\', '\\"' => '"', '\\$' => '$']);
    }
    $movimEnv[$m[1]] = $v;
}
foreach ($movimEnv as $k => $v) {
    if (getenv($k) === false) { putenv("$k=$v"); }
}
