// The log probe (see `core::movim::WORKER_LOG_PHP`): where a session worker writes its log
// (LOG_PATH, default the tree's log/), whether it can, and the last lines of errors.log. Prints
// `log_path <dir>`, then `log ok`, `log missing` or `log unwritable <why>`, then `errors| <line>`
// for each of the last lines (argv[1] of them); exit 0 when the worker can log, 1 otherwise.
$dir = getenv('LOG_PATH') ?: '/var/www/movim/log/';
echo "log_path $dir\n";
$file = rtrim($dir, '/') . '/errors.log';
$ok = false;
if (!is_dir($dir)) {
    echo "log missing\n";
} else {
    $err = '';
    set_error_handler(function ($n, $m) use (&$err) { $err .= $m . ' '; return true; });
    $h = fopen($file, 'a');
    restore_error_handler();
    if ($h === false) {
        echo 'log unwritable ' . trim($err) . "\n";
    } else {
        fclose($h);
        $ok = true;
        echo "log ok\n";
    }
}
$want = (int) ($argv[1] ?? 10);
if ($want > 0 && is_readable($file) && filesize($file) > 0) {
    $h = fopen($file, 'r');
    fseek($h, -min(filesize($file), 65536), SEEK_END);
    $lines = array_filter(explode("\n", stream_get_contents($h)), fn ($l) => trim($l) !== '');
    foreach (array_slice($lines, -$want) as $l) { echo "errors| $l\n"; }
}
exit($ok ? 0 : 1);
