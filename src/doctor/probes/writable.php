// the write probe (see check_mounts in checks/mounts.rs), run in a Movim container as `php -r` code: hence no opening tag.
$bad = 0; foreach (array_slice($argv, 1) as $d) { if (!is_dir($d) || !is_writable($d)) { echo $d, "\n"; $bad = 1; } } exit($bad);
